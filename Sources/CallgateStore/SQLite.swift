import CSQLite
import CallgateCore

/// An error from SQLite, with the statement's context.
struct SQLiteError: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var context: String

    var description: String { "SQLite error \(self.code) (\(self.message)) while \(self.context)" }

    /// Whether the disk or the file is the problem (full, read-only, I/O), as opposed to a bug.
    var isStorageFailure: Bool {
        switch self.code & 0xFF {
        case SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_PERM:
            return true
        default:
            return false
        }
    }
}

/// One SQLite connection. Not thread-safe: each connection is used by one thread at a time (the writer
/// thread, or a reader under its own lock).
final class SQLiteDatabase {
    let handle: OpaquePointer
    let path: String

    /// Opens (creating when asked) a database file.
    init(path: String, readOnly: Bool = false, create: Bool = true) throws(SQLiteError) {
        var db: OpaquePointer?
        var flags = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE
        if create && !readOnly { flags |= SQLITE_OPEN_CREATE }
        flags |= SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: message, context: "opening the database")
        }
        self.handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, Self.busyTimeoutMilliseconds)
    }

    /// How long a statement waits for another connection's lock before `SQLITE_BUSY`.
    static let busyTimeoutMilliseconds: Int32 = 5000

    deinit { sqlite3_close_v2(self.handle) }

    func error(_ rc: Int32, _ context: String) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(self.handle)), context: context)
    }

    /// Runs one or more statements that return no rows.
    func execute(_ sql: String) throws(SQLiteError) {
        let rc = sqlite3_exec(self.handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw self.error(rc, "running \(sql.prefix(60))") }
    }

    func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(self.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw self.error(rc, "preparing \(sql.prefix(60))") }
        return SQLiteStatement(stmt, database: self)
    }

    /// The value of a single-row, single-column integer query.
    func scalar(_ sql: String) throws(SQLiteError) -> Int64? {
        let stmt = try self.prepare(sql)
        return try stmt.step() ? stmt.int64(0) : nil
    }

    var changes: Int { Int(sqlite3_changes(self.handle)) }
}

/// A prepared statement, reused: ``bind(_:_:)`` values, ``step()`` through rows, ``reset()``.
final class SQLiteStatement {
    let handle: OpaquePointer
    unowned let database: SQLiteDatabase

    init(_ handle: OpaquePointer, database: SQLiteDatabase) {
        self.handle = handle
        self.database = database
    }

    deinit { sqlite3_finalize(self.handle) }

    func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(self.handle, index, value)
    }

    func bind(_ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(self.handle, index, value) } else { sqlite3_bind_null(self.handle, index) }
    }

    func bind(_ index: Int32, _ value: String?) {
        guard let value else {
            sqlite3_bind_null(self.handle, index)
            return
        }
        sqlite3_bind_text(self.handle, index, value, -1, callgate_sqlite_transient())
    }

    func bind(_ index: Int32, _ value: [UInt8]) {
        value.withUnsafeBytes { raw in
            _ = sqlite3_bind_blob(self.handle, index, raw.baseAddress, Int32(raw.count), callgate_sqlite_transient())
        }
    }

    /// Binds values to parameters 1, 2, … in order.
    func bindAll(_ values: [SQLiteValue]) {
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            switch value {
            case .int(let v): self.bind(index, v)
            case .text(let v): self.bind(index, v)
            case .null: sqlite3_bind_null(self.handle, index)
            }
        }
    }

    /// Advances; `true` when a row is available.
    @discardableResult
    func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(self.handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let sql = sqlite3_sql(self.handle).map { String(cString: $0) } ?? "?"
            throw self.database.error(rc, "running \(sql.prefix(60))")
        }
    }

    /// Runs to completion and resets, ready for the next bindings.
    func run() throws(SQLiteError) {
        defer { self.reset() }
        while try self.step() {}
    }

    func reset() {
        sqlite3_reset(self.handle)
        sqlite3_clear_bindings(self.handle)
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(self.handle, column) }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(self.handle, column) == SQLITE_NULL }

    func optionalInt64(_ column: Int32) -> Int64? { self.isNull(column) ? nil : self.int64(column) }

    func text(_ column: Int32) -> String {
        guard let c = sqlite3_column_text(self.handle, column) else { return "" }
        return String(cString: c)
    }

    func optionalText(_ column: Int32) -> String? { self.isNull(column) ? nil : self.text(column) }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(self.handle, column))
        guard count > 0, let p = sqlite3_column_blob(self.handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: count))
    }

    /// Every row, mapped.
    func rows<T>(_ map: (SQLiteStatement) -> T) throws(SQLiteError) -> [T] {
        defer { self.reset() }
        var result: [T] = []
        while try self.step() { result.append(map(self)) }
        return result
    }
}

/// A value for ``SQLiteStatement/bindAll(_:)``.
enum SQLiteValue {
    case int(Int64)
    case text(String)
    case null
}
