public import CallgateWire
import NIOCore

/// The seed corpora: valid inputs that libFuzzer mutates, and that the regression tests replay.
public enum FuzzSeeds {
    /// Seeds of the wire target: a role byte, then frames of realistic requests (one method per seed, a
    /// pipelined burst, and the same burst under each role).
    public static func wire() -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        let requests = Self.requests()
        for (index, method) in requests.enumerated() {
            seeds.append([0] + Self.frames([Wire.Request(requestID: UInt64(index + 1), method: method)]))
        }
        let burst = requests.enumerated().map { Wire.Request(requestID: UInt64($0.offset + 1), method: $0.element) }
        for role: UInt8 in 0..<4 {
            seeds.append([role] + Self.frames(burst))
        }
        // Many AuthorizeCalls in one read, as a dialer pipelines them.
        let calls = (1...32).map { i in
            Wire.Request(
                requestID: UInt64(i),
                method: .authorizeCall(
                    Wire.AuthorizeCallRequest(agentID: i % 3 == 0 ? "fz-bob" : "fz-alice", destination: "+12025550123")
                )
            )
        }
        seeds.append([3] + Self.frames(calls))
        return seeds
    }

    /// Seeds of the import target: a mode byte (bit 0 apply, bit 1 default provider), then a file.
    public static func imports() -> [[UInt8]] {
        let files = [
            "number,provider,country,location,tags,type,capabilities\n"
                + "+14155550100,telnyx,US,Austin,sales;east,did,voice;sms\n"
                + "+442079460000,twilio,GB,London,,mobile,voice\n",
            "+14155550101\n+1 (415) 555-0102\ntel:+14155550103;ext=1\n",
            "Phone Number,Status,Connection Name,Tags\n+14155550104,active,main,\"a,b\"\n",
            "SID,PhoneNumber,FriendlyName,Capabilities\nPN1,+14155550105,(415) 555-0105,\"{voice: true}\"\n",
            "number,provider,country\n+14155550106,telnyx,GB\n+14155550106,telnyx,US\nnot-a-number,telnyx,US\n",
            "0044 20 7946 0001,twilio\n020 7946 0002\n",
        ]
        var seeds: [[UInt8]] = []
        for (i, file) in files.enumerated() {
            seeds.append([UInt8(i % 4)] + Array(file.utf8))
        }
        return seeds
    }

    static func frames(_ requests: [Wire.Request]) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 4096)
        for request in requests { request.encodeFrame(into: &buffer) }
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    /// One request per method (hello aside), aimed at the fuzz organization of ``WireFuzzer``.
    static func requests() -> [Wire.Request.Method] {
        let alice = "+14155550100"
        let spare = "+14155550103"
        return [
            .authorizeCall(Wire.AuthorizeCallRequest(agentID: "fz-alice", destination: "+12025550123")),
            .authorizeCall(Wire.AuthorizeCallRequest(agentID: "fz-alice", destination: "+442079460000", dryRun: true)),
            .pickNumber(
                Wire.PickNumberRequest(
                    criteria: Wire.NumberCriteria(prefix: "1415555"),
                    mode: .reserve(Wire.ReserveMode(ttlSeconds: 60, agentID: "fz-bob"))
                )
            ),
            .assign(Wire.AssignRequest(number: spare, agentID: "fz-bob", terms: Wire.AssignmentTerms(dailyLimit: 3))),
            .release(Wire.ReleaseRequest(number: spare)),
            .addNumber(Wire.AddNumberRequest(number: "+14155550901", provider: "telnyx", tags: ["fz-pool"])),
            .importNumbers(Wire.ImportNumbersRequest(csv: "number,provider\n+14155550902,telnyx\n", dryRun: true)),
            .listNumbers(Wire.ListNumbersRequest(criteria: Wire.NumberCriteria(pattern: "+1415???0100"), pageSize: 5)),
            .getNumber(Wire.GetNumberRequest(number: alice)),
            .updateNumber(Wire.UpdateNumberRequest(number: spare, fields: ["location"], location: "LA")),
            .deleteNumbers(Wire.DeleteNumbersRequest(numbers: ["+14155550901"])),
            .upsertAgent(Wire.UpsertAgentRequest(id: "fz-dave", displayName: "Dave")),
            .listAgents(Wire.ListAgentsRequest()),
            .deactivateAgent(Wire.DeactivateAgentRequest(id: "fz-dave")),
            .listAssignments(Wire.ListAssignmentsRequest(agentID: "fz-alice")),
            .updateAssignment(Wire.UpdateAssignmentRequest(number: alice, fields: ["daily_limit"], dailyLimit: 7)),
            .resetCounters(Wire.ResetCountersRequest(numbers: [alice])),
            .auditLog(Wire.AuditLogRequest(number: alice, pageSize: 10)),
            .numberTimeline(Wire.NumberTimelineRequest(number: alice)),
            .createKey(Wire.CreateKeyRequest(role: .manager, label: "fuzz")),
            .listKeys(Wire.ListKeysRequest()),
            .stats(Wire.StatsRequest()),
        ]
    }
}
