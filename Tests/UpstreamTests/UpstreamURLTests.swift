import Testing
@testable import Upstream

@Suite struct UpstreamURLTests {
    func parse(_ s: String, env: String? = nil) throws(UpstreamURLError) -> UpstreamURL {
        try UpstreamURL.parse(s, passwordFromEnvironment: env)
    }

    func error(_ s: String, env: String? = nil) -> String? {
        do throws(UpstreamURLError) {
            _ = try parse(s, env: env)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func aFullURLGivesEveryPart() throws {
        let u = try parse("redis://alice:s3cret@redis.internal:6390/3?key=events.v1")
        #expect(u == UpstreamURL(host: "redis.internal", port: 6390, db: 3, user: "alice", password: "s3cret", key: "events.v1"))
    }

    @Test func aPasswordWithARawSlashOrQuestionMarkIsRefusedWithoutEchoingIt() {
        for url in ["redis://u:sec/ret@h?key=k", "redis://u:1234/5@h?key=k", "redis://u:pa?ss@h:1?key=k"] {
            let message = error(url)
            #expect(message == "--upstream: the user or password contains '/' or '?': percent-encode them (%2F, %3F), or pass the password in RINGGATE_UPSTREAM_PASSWORD")
            for fragment in ["sec", "ret", "1234", "5@h", "ss@"] { #expect(message?.contains(fragment) != true) }
        }
        #expect(throws: Never.self) { try parse("redis://u:sec%2Fret@h?key=k") }
    }

    @Test func portAndDbDefault() throws {
        let u = try parse("redis://127.0.0.1?key=k")
        #expect(u.port == 6379 && u.db == 0 && u.user == nil && u.password == nil)
        #expect(try parse("redis://h:1/?key=k").db == 0)
    }

    @Test func anIPv6HostIsInBrackets() throws {
        let u = try parse("redis://[::1]:6380/0?key=k")
        #expect(u.host == "::1" && u.port == 6380)
        #expect(u.redacted == "redis://[::1]:6380/0?key=k")
        #expect(u.endpoint == "[::1]:6380")
        #expect(error("redis://[::1:6380?key=k") == "--upstream: an IPv6 host must end with ']' (got '[::1:6380')")
    }

    @Test func theEnvironmentPasswordIsUsedOnlyWhenTheURLHasNone() throws {
        #expect(try parse("redis://h:1?key=k", env: "fromenv").password == "fromenv")
        #expect(try parse("redis://:inurl@h:1?key=k", env: "fromenv").password == "inurl")
        #expect(try parse("redis://h:1?key=k", env: "").password == nil)
        #expect(try parse("redis://bob@h:1?key=k", env: "pw") == UpstreamURL(host: "h", port: 1, db: 0, user: "bob", password: "pw", key: "k"))
    }

    @Test func userAndPasswordArePercentDecoded() throws {
        let u = try parse("redis://us%40er:p%3Aw%2F%25d@h:1?key=k")
        #expect(u.user == "us@er" && u.password == "p:w/%d")
        // '@' in the password may be given raw: the last '@' ends the user info.
        #expect(try parse("redis://:a@b@h:1?key=k").password == "a@b")
    }

    @Test func redactionHidesThePasswordWhereverItCameFrom() throws {
        #expect(try parse("redis://alice:s3cret@h:1/2?key=k").redacted == "redis://alice:***@h:1/2?key=k")
        #expect(try parse("redis://:s3cret@h:1?key=k").redacted == "redis://:***@h:1/0?key=k")
        #expect(try parse("redis://h:1?key=k", env: "s3cret").redacted == "redis://:***@h:1/0?key=k")
        #expect(!(try parse("redis://us%40er:s3cret@h:1?key=k").redacted.contains("s3cret")))
    }

    @Test func everyErrorNamesWhatIsWrong() {
        let cases: [(String, String)] = [
            ("http://h:1?key=k", "--upstream: the scheme must be redis:// (got 'http')"),
            ("h:1", "--upstream: the scheme must be redis:// (got 'h')"),
            ("rediss://h?key=k", "--upstream: the scheme must be redis:// (got 'rediss')"),
            ("redis://:1?key=k", "--upstream: missing host (redis://HOST:PORT/DB?key=NAME)"),
            ("redis://?key=k", "--upstream: missing host (redis://HOST:PORT/DB?key=NAME)"),
            ("redis://h_x:1?key=k", "--upstream: invalid host 'h_x'"),
            ("redis://h:0?key=k", "--upstream: bad port '0' (1-65535)"),
            ("redis://h:65536?key=k", "--upstream: bad port '65536' (1-65535)"),
            ("redis://h:abc?key=k", "--upstream: bad port 'abc' (1-65535)"),
            ("redis://h:?key=k", "--upstream: bad port '' (1-65535)"),
            ("redis://h:1/x?key=k", "--upstream: bad db 'x' (a number, e.g. /0)"),
            ("redis://h:1/-1?key=k", "--upstream: bad db '-1' (a number, e.g. /0)"),
            ("redis://h:1/0", "--upstream: missing ?key=NAME (the cluster's stream)"),
            ("redis://h:1/0?key=", "--upstream: key= is empty"),
            ("redis://h:1/0?key=a b", "--upstream: invalid key 'a b' (only A-Z a-z 0-9 . _ : -)"),
            ("redis://h:1/0?key=a*", "--upstream: invalid key 'a*' (only A-Z a-z 0-9 . _ : -)"),
            ("redis://h:1/0?key=" + String(repeating: "k", count: 129), "--upstream: key is 129 bytes; at most 128"),
            ("redis://h:1/0?key=a&key=b", "--upstream: key= is given twice"),
            ("redis://h:1/0?key=a&timeout=3", "--upstream: unknown query parameter 'timeout' (only key=NAME)"),
            ("redis://h:1/0?key=a#x", "--upstream: a fragment (#...) is not allowed"),
            ("redis://:pa%zzss@h:1?key=k", "--upstream: invalid percent-encoding in the password (use %XX with two hex digits)"),
            ("redis://u%4:pw@h:1?key=k", "--upstream: invalid percent-encoding in the user (use %XX with two hex digits)"),
            ("redis://:%ff%fe@h:1?key=k", "--upstream: the password is not valid UTF-8 once percent-decoded"),
            ("redis://bob@h:1?key=k", "--upstream: user 'bob' is given without a password (put it in the URL or RINGGATE_UPSTREAM_PASSWORD)"),
        ]
        for (url, message) in cases {
            #expect(error(url) == message, "\(url)")
        }
        // 128 bytes is the limit, not one less.
        #expect(error("redis://h:1/0?key=" + String(repeating: "k", count: 128)) == nil)
    }

    @Test func noErrorRepeatsThePassword() {
        for url in ["redis://:s3cret@h:0?key=k", "redis://:s3cret@h:1", "redis://:s3cret@h:1?key=a*"] {
            let message = error(url)
            #expect(message != nil)
            #expect(!(message ?? "").contains("s3cret"))
        }
    }
}
