import CallgateCore

/// The pool gauges, computed at each scrape from the counters the engine keeps (no scan of numbers):
///
/// | metric | labels |
/// |---|---|
/// | `callgate_pool_available` (gauge) | `organization`, `pool` |
/// | `callgate_pool_threshold` (gauge) | `organization`, `pool` |
/// | `callgate_pools_below_threshold` (gauge) | `organization` |
///
/// Cardinality is bounded: only pools that have a low-capacity threshold (`set_pool_threshold`) get
/// series, and an organization may set at most ``Organization/maximumPoolThresholds`` (100) of them;
/// the number of organizations is the operator's. Tags without a threshold, however many, add nothing.
enum PoolMetrics {
    static func text(_ engine: Engine) -> String {
        var available = ""
        var thresholds = ""
        var below = ""
        for org in engine.allOrganizations {
            let organization = "organization=\"\(org.id.rawValue)\""
            var count = 0
            for pool in org.poolsWithThresholds() {
                let labels = "\(organization),pool=\"\(Self.escaped(pool.pool))\""
                available += "callgate_pool_available{\(labels)} \(pool.counts.available)\n"
                thresholds += "callgate_pool_threshold{\(labels)} \(pool.threshold ?? 0)\n"
                if pool.isBelowThreshold { count += 1 }
            }
            below += "callgate_pools_below_threshold{\(organization)} \(count)\n"
        }
        return """
            # HELP callgate_pool_available Numbers available (not held, active) in a pool that has a low-capacity threshold.
            # TYPE callgate_pool_available gauge
            \(available)\
            # HELP callgate_pool_threshold The pool's low-capacity threshold: a warning when available is below it.
            # TYPE callgate_pool_threshold gauge
            \(thresholds)\
            # HELP callgate_pools_below_threshold Pools of the organization whose available numbers are below their threshold.
            # TYPE callgate_pools_below_threshold gauge
            \(below)
            """
    }

    /// A label value escaped for the text format (`\`, `"`, line feed).
    static func escaped(_ value: String) -> String {
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
