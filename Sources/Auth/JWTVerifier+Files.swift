import Foundation

extension JWTVerifier {
    /// The largest key file read (a JWKS of many keys fits; a wrong path to a log does not).
    public static let keyFileBytesMax = 1 << 20

    /// A verifier from the `--jwt-*` key files. Every fault is a `JWTConfigError` naming the
    /// flag and file; the key bytes are never part of a message.
    public static func load(hs256SecretFile: String?, publicKeyFile: String?, jwksFile: String?,
                            algorithms: [JWTAlgorithm]?, audience: String?, issuer: String?,
                            leewaySeconds: Double) throws(JWTConfigError) -> JWTVerifier {
        var keys: [JWTKey] = []
        if let path = hs256SecretFile {
            keys.append(try JWTKey.hmacSecret(fileBytes: try read(path, flag: "--jwt-hs256-secret-file"), path: path))
        }
        if let path = publicKeyFile {
            let bytes = try read(path, flag: "--jwt-public-key-file")
            keys.append(try JWTKey.publicKey(pem: String(decoding: bytes, as: UTF8.self), path: path))
        }
        if let path = jwksFile {
            keys += try JWTKey.keySet(jwks: try read(path, flag: "--jwks-file"), path: path)
        }
        return try JWTVerifier(keys: keys, algorithms: algorithms, audience: audience, issuer: issuer,
                               leewaySeconds: leewaySeconds)
    }

    static func read(_ path: String, flag: String) throws(JWTConfigError) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw JWTConfigError("\(flag) \(path): cannot open the file (missing, or not readable by this user)")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: keyFileBytesMax + 1) ?? Data()
        } catch {
            throw JWTConfigError("\(flag) \(path): cannot read the file (a directory?)")
        }
        guard data.count <= keyFileBytesMax else { throw JWTConfigError("\(flag) \(path): larger than \(keyFileBytesMax) bytes; not a key file") }
        guard !data.isEmpty else { throw JWTConfigError("\(flag) \(path): the file is empty") }
        return Array(data)
    }
}
