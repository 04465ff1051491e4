import Testing

@testable import CallgateCore

@Suite struct ImportParsingTests {
    func values(_ row: ImportRow) throws -> ImportValues { try row.values.get() }

    func reason(_ row: ImportRow) -> String? {
        if case .failure(let error) = row.values { return error.message }
        return nil
    }

    @Test func positionalRowsWithoutHeader() throws {
        let file = try ImportFile.parse(
            """
            +14155550100,telnyx,US,Austin office,"sales;east",did,"voice,sms"
            tel:+1 (415) 555-0101,twilio
            4155550102,telnyx,US
            """
        )
        #expect(file.format == .columns)
        #expect(file.rows.map(\.line) == [1, 2, 3])
        let first = try values(file.rows[0])
        #expect(file.rows[0].number == num("+14155550100"))
        #expect(first.provider == "telnyx")
        #expect(first.country == country("US"))
        #expect(first.location == "Austin office")
        #expect(first.tags == ["east", "sales"])
        #expect(first.numberType == "did")
        #expect(first.capabilities == [.voice, .sms])
        #expect(first.status == nil)
        let second = try values(file.rows[1])
        #expect(file.rows[1].number == num("+14155550101"))
        #expect(second.location == nil && second.tags == nil && second.capabilities == nil)
        // Without `+`, the number is read in the row's country.
        #expect(file.rows[2].number == num("+14155550102"))
    }

    @Test func headerOrdersAndRenamesColumns() throws {
        let file = try ImportFile.parse(
            """
            Capabilities,ISO Country,PhoneNumber,Provider,City,Number-Type,tags,status
            sms,GB,+442079460000,bt,London,mobile,a|b,inactive
            """
        )
        #expect(file.format == .columns)
        #expect(file.rows.count == 1)
        #expect(file.rows[0].line == 2)
        let v = try values(file.rows[0])
        #expect(v.capabilities == .sms)
        #expect(v.country == country("GB"))
        #expect(v.provider == "bt")
        #expect(v.location == "London")
        #expect(v.numberType == "mobile")
        #expect(v.tags == ["a", "b"])
        #expect(v.status == .inactive)
    }

    @Test func headerProblemsFailTheWholeFile() {
        #expect(throws: CallgateError.self) { try ImportFile.parse("number,provider,contry\n+14155550100,x,US\n") }
        #expect(throws: CallgateError.self) { try ImportFile.parse("provider,country\nx,US\n") }
        #expect(throws: CallgateError.self) { try ImportFile.parse("number,phone,provider\n+14155550100,x,y\n") }
        // No provider column and no default provider.
        #expect(throws: CallgateError.self) { try ImportFile.parse("number,country\n+14155550100,US\n") }
        #expect(throws: CallgateError.self) { try ImportFile.parse("+14155550100\n+14155550101\n") }
    }

    @Test func plainListTakesTheDefaultProvider() throws {
        for csv in ["+14155550100\n\n+14155550101\r\n", "number\n+14155550100\n+14155550101"] {
            let file = try ImportFile.parse(csv, defaultProvider: "bandwidth")
            #expect(file.format == .list)
            #expect(file.rows.count == 2)
            #expect(try file.rows.map { try values($0).provider } == ["bandwidth", "bandwidth"])
        }
        // In a columns file, rows without a provider take the default too.
        let mixed = try ImportFile.parse("+14155550100,telnyx\n+14155550101\n", defaultProvider: "other")
        #expect(try mixed.rows.map { try values($0).provider } == ["telnyx", "other"])
        let noDefault = try ImportFile.parse("+14155550100,telnyx\n+14155550101\n")
        #expect(reason(noDefault.rows[1])?.contains("no provider") == true)
    }

    @Test func badRowsAreRejectedWithTheirReason() throws {
        let file = try ImportFile.parse(
            """
            number,provider,country,capabilities,status
            +14155550100,telnyx,US,voice,active
            not-a-number,telnyx,US,,
            +14155550101,telnyx,GB,,
            +14155550102,telnyx,US,teleport,
            +14155550103,telnyx,US,,sleeping
            +1 415 555 0100,telnyx,US,,
            +14155550104,telnyx,XX,,
            +14155550105,telnyx,+44,,
            +14155550106,telnyx,+1,sms,
            +14155550107,,US,,
            +14155550108,telnyx,US,Austin, TX,,
            """
        )
        let reasons = file.rows.map { (line: $0.line, reason: reason($0)) }
        #expect(reasons[0].reason == nil)
        #expect(reasons[1].line == 3 && reasons[1].reason?.contains("invalid number") == true)
        #expect(file.rows[1].text == "not-a-number")
        #expect(reasons[2].reason?.contains("country mismatch") == true)
        #expect(reasons[3].reason?.contains("unknown capability 'teleport'") == true)
        #expect(reasons[4].reason?.contains("unknown status 'sleeping'") == true)
        #expect(reasons[5].reason == "duplicate of line 2")
        #expect(reasons[6].reason?.contains("unknown country") == true)
        #expect(reasons[7].reason?.contains("country mismatch") == true)
        #expect(reasons[8].reason == nil)
        #expect(reasons[9].reason?.contains("no provider") == true)
        #expect(reasons[10].reason == "7 fields but the header has 5 (quote a value that holds a comma)")
    }

    @Test func telnyxExport() throws {
        let file = try ImportFile.parse(
            """
            phone_number,status,connection_name,tags,phone_number_type,messaging_profile_name,created_at
            +14155550100,active,Main SIP,"pool-a,west",local,msg,2024-01-02T03:04:05Z
            +18005550100,port-pending,Main SIP,,toll_free,,2024-01-02T03:04:05Z
            +14155550101,deleted,Main SIP,,local,,2024-01-02T03:04:05Z
            +14155550102,frozen,Main SIP,,local,,2024-01-02T03:04:05Z
            """,
            defaultProvider: "ignored"
        )
        #expect(file.format == .telnyx)
        let first = try values(file.rows[0])
        #expect(first.provider == "telnyx")
        #expect(first.status == .active)
        #expect(first.tags == ["pool-a", "west"])
        #expect(first.numberType == "did")
        let second = try values(file.rows[1])
        #expect(second.status == .inactive)
        #expect(second.numberType == "tollfree")
        #expect(reason(file.rows[2])?.contains("not in service") == true)
        #expect(reason(file.rows[3])?.contains("unknown Telnyx status") == true)
    }

    @Test func twilioExport() throws {
        let file = try ImportFile.parse(
            """
            PhoneNumber,FriendlyName,Sid,VoiceCapable,SmsCapable,MmsCapable,FaxCapable,Locality,Region,Status
            +14155550100,(415) 555-0100,PN0001,true,true,false,false,San Francisco,CA,in-use
            +14155550101,Sales,PN0002,yes,no,,,,,in-use
            +14155550102,x,PN0003,maybe,true,,,,,in-use
            """
        )
        #expect(file.format == .twilio)
        let first = try values(file.rows[0])
        #expect(first.provider == "twilio")
        #expect(first.capabilities == [.voice, .sms])
        #expect(first.location == "San Francisco, CA")
        #expect(first.status == .active)
        #expect(try values(file.rows[1]).capabilities == .voice)
        #expect(reason(file.rows[2])?.contains("voice_capable must be true or false") == true)

        let json = try ImportFile.parse(
            """
            phone_number,friendly_name,sid,capabilities
            +14155550100,a,PN1,"{""voice"": true, ""sms"": false, ""mms"": true}"
            """
        )
        #expect(try values(json.rows[0]).capabilities == [.voice, .mms])
    }

    @Test func csvQuotingAndLineNumbers() {
        let records = CSVReader.records("a,\"b,c\",\"d \"\"e\"\"\"\n\n\"multi\nline\",x\r\nlast,\"\"")
        #expect(records.map(\.line) == [1, 3, 5])
        #expect(records[0].fields == ["a", "b,c", "d \"e\""])
        #expect(records[1].fields == ["multi\nline", "x"])
        #expect(records[2].fields == ["last", ""])
        let tabs = CSVReader.records("\u{FEFF}number\tprovider\n+14155550100\ttelnyx")
        #expect(tabs[0].fields == ["number", "provider"])
        #expect(tabs[1].fields == ["+14155550100", "telnyx"])
    }

    @Test(arguments: [
        ("PhoneNumber", "phone_number"), ("Phone Number", "phone_number"), ("phone-number", "phone_number"),
        ("ISOCountry", "iso_country"), ("VoiceCapable", "voice_capable"), ("e164", "e164"), (" Tags ", "tags"),
    ])
    func headerKeys(raw: String, key: String) {
        #expect(Layout.key(raw) == key)
    }
}

@Suite struct ImportApplyTests {
    @Test func everyOutcomeAndOneChange() throws {
        let f = try Fixture()
        try f.org.addNumber(NumberInput(number: num("+14155550100"), provider: "telnyx"), actor: admin)
        try f.org.addNumber(
            NumberInput(number: num("+14155550101"), provider: "telnyx", location: "Austin"),
            actor: admin
        )
        let before = f.log.records.count
        let report = try f.org.importNumbers(
            csv: """
                number,provider,country,location
                +14155550100,telnyx,US,
                +14155550101,twilio,US,Dallas
                +14155550102,telnyx,US,Boston
                bogus,telnyx,US,
                """,
            actor: admin
        )
        #expect(report.rows.map(\.outcome) == [.unchanged, .updated, .added, .rejected])
        #expect(report.rows.map(\.line) == [2, 3, 4, 5])
        #expect(report.rows[1].reason == "changed: provider, location")
        #expect((report.added, report.updated, report.unchanged, report.rejected) == (1, 1, 1, 1))
        #expect(report.ticket != nil)
        // One change record for the whole import.
        #expect(f.log.records.count == before + 1)
        guard case .numbersImported(let added, let updated)? = f.log.records.last?.event else {
            Issue.record("import not recorded as one change")
            return
        }
        #expect(added.map(\.number) == [num("+14155550102")])
        #expect(updated.map(\.before.attributes.provider) == ["telnyx"])
        #expect(updated.map(\.after.attributes.location) == ["Dallas"])
        #expect(f.org.number(num("+14155550101"))?.attributes.provider == "twilio")
        #expect(f.org.number(num("+14155550102"))?.attributes.location == "Boston")
        #expect(f.org.number(num("+14155550102"))?.state == .available)
        // Importing the same file again changes nothing.
        let again = try f.org.importNumbers(
            csv: "+14155550101,twilio,US,Dallas\n+14155550102,telnyx,US,Boston\n",
            actor: admin
        )
        #expect(again.rows.map(\.outcome) == [.unchanged, .unchanged])
        #expect(again.ticket == nil)
        #expect(f.log.records.count == before + 1)
    }

    @Test func dryRunChangesNothing() throws {
        let f = try Fixture()
        try f.org.addNumber(NumberInput(number: num("+14155550100"), provider: "telnyx"), actor: admin)
        let before = f.log.records.count
        let csv = "+14155550100,twilio\n+14155550101,twilio\n"
        let dry = try f.org.importNumbers(csv: csv, dryRun: true, actor: admin)
        #expect(dry.rows.map(\.outcome) == [.updated, .added])
        #expect(dry.ticket == nil)
        #expect(f.log.records.count == before)
        #expect(f.org.number(num("+14155550100"))?.attributes.provider == "telnyx")
        #expect(f.org.number(num("+14155550101")) == nil)
        let real = try f.org.importNumbers(csv: csv, actor: admin)
        #expect(real.rows == dry.rows)
    }

    @Test func aStoreRefusalAppliesNothing() throws {
        let f = try Fixture()
        try f.org.addNumber(NumberInput(number: num("+14155550100"), provider: "telnyx"), actor: admin)
        f.log.failAll(with: CallgateError(.unavailable, "store failed"))
        #expect(throws: CallgateError.self) {
            try f.org.importNumbers(csv: "+14155550100,twilio\n+14155550101,twilio\n", actor: admin)
        }
        f.log.failAll(with: nil)
        #expect(f.org.number(num("+14155550100"))?.attributes.provider == "telnyx")
        #expect(f.org.number(num("+14155550101")) == nil)
        #expect(try f.org.listNumbers().items.map(\.number) == [num("+14155550100")])
    }

    @Test func deactivatingAnAssignedNumberStopsItsCalls() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+14155550100"])
        #expect(try f.authorize("a1", "+14155550199").isAllowed)
        let report = try f.org.importNumbers(
            csv: "number,provider,status\n+14155550100,telnyx,inactive\n",
            actor: admin
        )
        #expect(report.rows.map(\.outcome) == [.updated])
        #expect(try f.authorize("a1", "+14155550199").denyReason == .numberInactive)
        #expect(f.org.number(num("+14155550100"))?.state == .assigned(agent: "a1"))
    }

    @Test func twentyThousandRows() throws {
        let f = try Fixture()
        // 20,000 new numbers and 100 already present (one with other attributes), and a bad row.
        for i in 0..<100 {
            try f.org.addNumber(
                NumberInput(number: PhoneNumber(digits: 12_025_000_000 + UInt64(i))!, provider: "telnyx"),
                actor: admin
            )
        }
        var lines = ["number,provider,country,tags"]
        for i in (0..<20_000).reversed() {
            lines.append("+1212\(5_000_000 + i),telnyx,US,bulk")
        }
        lines.append("+12025000000,telnyx,US,")
        lines.append("+12025000001,telnyx,US,moved")
        lines.append("+1212,telnyx,US,")
        let report = try f.org.importNumbers(csv: lines.joined(separator: "\n"), actor: admin)
        #expect(report.rows.count == 20_003)
        #expect((report.added, report.updated, report.unchanged, report.rejected) == (20_000, 1, 1, 1))
        #expect(report.rows.last?.line == 20_004)
        var listed: [PhoneNumber] = []
        var cursor: String?
        repeat {
            let page = try f.org.listNumbers(
                NumberFilter(criteria: NumberCriteria(prefix: "1212")),
                cursor: cursor,
                limit: 1000
            )
            listed += page.items.map(\.number)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(listed.count == 20_000)
        #expect(listed == listed.sorted())
        #expect(try f.org.listNumbers(limit: 1000).items.count == 1000)
        #expect(f.org.inventoryCounts().numbers == 20_100)
    }
}
