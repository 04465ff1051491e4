import Foundation

/// Draws ranks 0 ..< `count` with probability ∝ 1/(rank + 1)^s: rank 0 is the hottest.
///
/// The cumulative distribution is computed once (`count` doubles); each draw is a binary search over it,
/// without allocation.
public struct ZipfSampler: Sendable {
    public let count: Int
    public let exponent: Double
    /// cdf[k] = P(rank ≤ k); the last entry is 1.
    private let cdf: [Double]

    public init(count: Int, exponent: Double) {
        precondition(count >= 1, "a Zipf sampler needs at least one rank")
        self.count = count
        self.exponent = exponent
        var cdf = [Double](repeating: 0, count: count)
        var sum = 0.0
        for k in 0..<count {
            sum += 1 / pow(Double(k + 1), exponent)
            cdf[k] = sum
        }
        for k in 0..<count { cdf[k] /= sum }
        cdf[count - 1] = 1
        self.cdf = cdf
    }

    /// The probability of `rank`.
    public func probability(of rank: Int) -> Double {
        rank == 0 ? self.cdf[0] : self.cdf[rank] - self.cdf[rank - 1]
    }

    /// The rank for a uniform `u` in [0, 1): the first k with cdf[k] > u.
    public func rank(for u: Double) -> Int {
        var low = 0
        var high = self.count - 1
        while low < high {
            let middle = (low + high) >> 1
            if self.cdf[middle] > u {
                high = middle
            } else {
                low = middle + 1
            }
        }
        return low
    }

    public func sample(using generator: inout some RandomNumberGenerator) -> Int {
        self.rank(for: Double(generator.next() >> 11) * 0x1p-53)
    }
}

/// xoshiro256** (Blackman and Vigna): fast, small, and good enough for choosing agents. Seeded through
/// SplitMix64. `SystemRandomNumberGenerator` would make a system call per draw.
public struct LoadRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        self.s0 = splitMix()
        self.s1 = splitMix()
        self.s2 = splitMix()
        self.s3 = splitMix()
    }

    public mutating func next() -> UInt64 {
        let result = (self.s1 &* 5).rotatedLeft(7) &* 9
        let t = self.s1 << 17
        self.s2 ^= self.s0
        self.s3 ^= self.s1
        self.s1 ^= self.s2
        self.s0 ^= self.s3
        self.s2 ^= t
        self.s3 = self.s3.rotatedLeft(45)
        return result
    }

    /// A uniform double in [0, 1).
    public mutating func nextUnit() -> Double {
        Double(self.next() >> 11) * 0x1p-53
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 - count))
    }
}
