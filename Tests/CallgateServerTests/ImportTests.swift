import CallgateClient
import CallgateCore
import CallgateWire
import Testing

/// `import_numbers` and the search filters end to end: client → server → engine → store.
@Suite("Import and search over loopback") struct ImportTests {
    static func outcomes(_ response: Wire.ImportNumbersResponse) -> [String] { response.rows.map(\.outcome) }

    static func numbers(_ client: CallgateClient, _ request: Wire.ListNumbersRequest) async throws -> [String] {
        var request = request
        request.pageSize = 1000
        return try await client.listNumbers(request).numbers.map(\.number)
    }

    @Test func headerFileEveryOutcomeAndTheAuditLog() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            _ = try await c.addNumber(Wire.AddNumberRequest(number: "+14155550100", provider: "telnyx"))
            _ = try await c.addNumber(Wire.AddNumberRequest(number: "+14155550101", provider: "telnyx"))
            let response = try await c.importNumbers(
                Wire.ImportNumbersRequest(
                    csv: """
                        Phone Number,Provider,Country,Location,Tags,Type,Capabilities
                        +14155550100,telnyx,US,,,,
                        +14155550101,telnyx,US,Austin,pool-a;pool-b,,
                        +14155550102,twilio,US,Dallas,,tollfree,voice sms
                        +14155550103,twilio,GB,,,,
                        +14155550102,twilio,US,,,,
                        +14155550104,twilio,US,,,,fax;teleport
                        hello,twilio,US,,,,
                        """
                )
            )
            #expect(response.format == "columns")
            #expect(
                Self.outcomes(response) == [
                    "unchanged", "updated", "added", "rejected", "rejected", "rejected", "rejected",
                ]
            )
            #expect(response.rows.map(\.line) == [2, 3, 4, 5, 6, 7, 8])
            #expect(response.rows[1].reason == "changed: location, tags")
            #expect(response.rows[3].reason.contains("country mismatch"))
            #expect(response.rows[4].reason == "duplicate of line 4")
            #expect(response.rows[5].reason.contains("unknown capability 'teleport'"))
            #expect(response.rows[6].reason.contains("invalid number") && response.rows[6].number == "hello")
            #expect((response.added, response.updated, response.unchanged, response.rejected) == (1, 1, 1, 4))

            let added = try await c.getNumber(Wire.GetNumberRequest(number: "+14155550102"))
            #expect(added.provider == "twilio" && added.location == "Dallas" && added.numberType == "tollfree")
            #expect(added.capabilities == ["voice", "sms"] && added.state == "available")
            let updated = try await c.getNumber(Wire.GetNumberRequest(number: "+14155550101"))
            #expect(updated.location == "Austin" && updated.tags == ["pool-a", "pool-b"])

            // The audit log shows the import: one entry for it, and one per number changed.
            let audit = try await c.auditLog(Wire.AuditLogRequest(pageSize: 10)).entries
            #expect(audit.first?.action == "number.import" && audit.first?.number == "")
            #expect(audit.first?.afterJson == #"{"added":1,"updated":1}"#)
            let history = try await c.auditLog(Wire.AuditLogRequest(number: "+14155550101")).entries
            #expect(history.map(\.action) == ["number.import", "number.add"])
            #expect(history[0].beforeJson.contains("\"location\":\"\"") && history[0].afterJson.contains("Austin"))
        }
    }

    @Test func headerlessListTelnyxAndTwilioFiles() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            let positional = try await c.importNumbers(
                Wire.ImportNumbersRequest(csv: "+12125550100,telnyx,US,NYC\n+12125550101,telnyx\n")
            )
            #expect(positional.format == "columns" && Self.outcomes(positional) == ["added", "added"])

            await expectStatus(.invalidArgument) {
                try await c.importNumbers(Wire.ImportNumbersRequest(csv: "+12125550200\n+12125550201\n"))
            }
            let list = try await c.importNumbers(
                Wire.ImportNumbersRequest(csv: "+12125550200\n+12125550201\n", defaultProvider: "bandwidth")
            )
            #expect(list.format == "list" && Self.outcomes(list) == ["added", "added"])
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+12125550201")).provider == "bandwidth")

            let telnyx = try await c.importNumbers(
                Wire.ImportNumbersRequest(
                    csv: """
                        phone_number,status,connection_name,tags,phone_number_type,id
                        +13125550100,active,Dialer SIP,"east,chicago",local,1293384261075731499
                        +13125550101,port-pending,Dialer SIP,,local,1293384261075731500
                        +13125550102,ported-out,Dialer SIP,,local,1293384261075731501
                        """
                )
            )
            #expect(telnyx.format == "telnyx" && Self.outcomes(telnyx) == ["added", "added", "rejected"])
            let t0 = try await c.getNumber(Wire.GetNumberRequest(number: "+13125550100"))
            #expect(t0.provider == "telnyx" && t0.tags == ["chicago", "east"] && t0.numberType == "did")
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+13125550101")).status == .inactive)

            let twilio = try await c.importNumbers(
                Wire.ImportNumbersRequest(
                    csv: """
                        PhoneNumber,FriendlyName,Sid,VoiceCapable,SmsCapable,MmsCapable,Locality,Region
                        +16465550100,(646) 555-0100,PN11,true,true,true,New York,NY
                        +16465550101,Sales line,PN12,true,false,false,,
                        +12125550100,(212) 555-0100,PN13,true,false,false,,
                        """
                )
            )
            // +1 212 555 0100 was imported above as telnyx: the Twilio export moves it (location kept).
            #expect(twilio.format == "twilio" && Self.outcomes(twilio) == ["added", "added", "updated"])
            let w0 = try await c.getNumber(Wire.GetNumberRequest(number: "+16465550100"))
            #expect(
                w0.provider == "twilio" && w0.capabilities == ["voice", "sms", "mms"] && w0.location == "New York, NY"
            )
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+12125550100")).location == "NYC")
        }
    }

    @Test func dryRunChangesNothing() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            _ = try await c.addNumber(Wire.AddNumberRequest(number: "+14155550100", provider: "telnyx"))
            let auditBefore = try await c.auditLog(Wire.AuditLogRequest()).entries
            let csv = "number,provider\n+14155550100,twilio\n+14155550101,twilio\nbad,twilio\n"
            let dry = try await c.importNumbers(Wire.ImportNumbersRequest(csv: csv, dryRun: true))
            #expect(Self.outcomes(dry) == ["updated", "added", "rejected"])
            #expect(try await Self.numbers(c, Wire.ListNumbersRequest()) == ["+14155550100"])
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+14155550100")).provider == "telnyx")
            #expect(try await c.auditLog(Wire.AuditLogRequest()).entries == auditBefore)
            let real = try await c.importNumbers(Wire.ImportNumbersRequest(csv: csv))
            #expect(real.rows == dry.rows)
            #expect(try await Self.numbers(c, Wire.ListNumbersRequest()) == ["+14155550100", "+14155550101"])
        }
    }

    @Test func searchFilters() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            _ = try await c.importNumbers(
                Wire.ImportNumbersRequest(
                    csv: """
                        number,provider,location,tags,capabilities
                        +14155550100,telnyx,San Francisco,west,voice
                        +14155550199,twilio,San Francisco,west,voice;sms
                        +12125550000,telnyx,New York,east,voice
                        +442079460000,bt,London,uk,voice
                        """
                )
            )
            _ = try await c.upsertAgent(Wire.UpsertAgentRequest(id: "jdoe", displayName: "Jane Doe"))
            _ = try await c.assign(Wire.AssignRequest(number: "+12125550000", agentID: "jdoe"))
            func list(_ criteria: Wire.NumberCriteria, state: String = "") async throws -> [String] {
                try await Self.numbers(c, Wire.ListNumbersRequest(criteria: criteria, state: state))
            }
            #expect(try await list(Wire.NumberCriteria(areaCode: "415")) == ["+14155550100", "+14155550199"])
            #expect(try await list(Wire.NumberCriteria(pattern: "+1415???01??")) == ["+14155550100", "+14155550199"])
            #expect(try await list(Wire.NumberCriteria(pattern: "*0000")) == ["+12125550000", "+442079460000"])
            #expect(try await list(Wire.NumberCriteria(text: "jane")) == ["+12125550000"])
            #expect(try await list(Wire.NumberCriteria(text: "london")) == ["+442079460000"])
            #expect(try await list(Wire.NumberCriteria(country: "GB")) == ["+442079460000"])
            #expect(try await list(Wire.NumberCriteria(capabilities: ["sms"])) == ["+14155550199"])
            #expect(try await list(Wire.NumberCriteria(provider: "telnyx"), state: "available") == ["+14155550100"])
            await expectStatus(.invalidArgument) { try await list(Wire.NumberCriteria(areaCode: "15")) }
            await expectStatus(.invalidArgument) { try await list(Wire.NumberCriteria(pattern: "+1415#")) }
            let picked = try await c.pickNumber(
                Wire.PickNumberRequest(
                    criteria: Wire.NumberCriteria(areaCode: "415", pattern: "*99"),
                    mode: .reserve(Wire.ReserveMode(ttlSeconds: 60))
                )
            )
            #expect(picked.number?.number == "+14155550199")
        }
    }
}
