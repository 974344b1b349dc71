/// Files built into the binary (Package.swift: `.embedInCode`), served as they are.
enum StaticAssets {
    static let statusPage: [UInt8] = PackageResources.status_html
    static let openAPI: [UInt8] = PackageResources.openapi_yaml
}
