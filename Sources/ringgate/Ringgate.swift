import ArgumentParser
import CRinggateSys
import GatewayCore
import IO
@preconcurrency import Glibc
import Ingest
import Logging
import Supervisor
import Upstream
import Worker

@main
struct Ringgate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ringgate",
        abstract: "A streaming gateway: publish events into slots, read them as Server-Sent Events or history.",
        version: "0.1.0",
        subcommands: [Serve.self, Publish.self, Tail.self, Health.self, IngestRole.self, WorkerRole.self]
    )
}

/// Logs to standard error; `RINGGATE_LOG_LEVEL` (trace…critical) sets the level.
func makeLogger(_ label: String) -> Logger {
    LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
    var logger = Logger(label: label)
    logger.logLevel = ServeOptions.env("LOG_LEVEL").flatMap(Logger.Level.init(rawValue:)) ?? .info
    return logger
}

/// The executable's real path, so children are named `ringgate` in `ps`, not `exe`.
func executablePath() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return CommandLine.arguments[0] }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway: a supervisor, one ingest and N workers.")
    @OptionGroup var options: ServeOptions
    @Flag(name: .customLong("check-config"),
          help: "Check the flags and RINGGATE_* variables, print the settings they give, and exit (0 = valid, 64 = not); opens, binds and connects nothing.")
    var checkConfig = false

    func run() throws {
        var config = try options.resolve()
        if checkConfig {
            if let text = config.upstream,
               let url = try? UpstreamURL.parse(text, passwordFromEnvironment: ServeOptions.env("UPSTREAM_PASSWORD")) {
                config.upstream = url.renderedWithoutPassword
            }
            print("ringgate: configuration is valid")
            let arguments = ServeOptions.childArguments(config)
            var i = 0
            while i < arguments.count {
                if i + 1 < arguments.count, !arguments[i + 1].hasPrefix("--") {
                    print("\(arguments[i]) \(arguments[i + 1])")
                    i += 2
                } else {
                    print(arguments[i])
                    i += 1
                }
            }
            if config.publishToken != nil { print("publish token: set") }
            return
        }
        let logger = makeLogger("ringgate.supervisor")
        // `auto` is resolved once, here, so every child runs on the same backend and the
        // fallback is logged once.
        // The probe builds what each child builds, at the worker's and the ingest's sizes.
        let (kind, fallbackCause) = IOSelection.resolve(
            config.io, probing: [Worker.ioConfiguration(config), Ingest.ioConfiguration(config)])
        if let fallbackCause {
            logger.warning("io_uring is unavailable, serving on epoll: \(fallbackCause)")
        }
        if config.io == .auto && kind == .ioUring { setenv(IOSelection.resolvedFromAutoVariable, "1", 1) }
        if fallbackCause != nil { setenv(IOSelection.fellBackVariable, "1", 1) } else { unsetenv(IOSelection.fellBackVariable) }
        config.io = kind == .epoll ? .epoll : .ioUring
        if let token = config.publishToken { setenv("RINGGATE_PUBLISH_TOKEN", token, 1) }
        // The Redis password travels to the children in the environment, as the token does,
        // not in their argv.
        if let text = config.upstream,
           let url = try? UpstreamURL.parse(text, passwordFromEnvironment: ServeOptions.env("UPSTREAM_PASSWORD")),
           let password = url.password {
            setenv("RINGGATE_UPSTREAM_PASSWORD", password, 1)
            config.upstream = url.renderedWithoutPassword
        }
        let supervisor = Supervisor(config: config, executable: executablePath(),
                                    childArguments: ServeOptions.childArguments(config), logger: logger)
        do {
            let code = try supervisor.run()
            throw ExitCode(code)
        } catch let error as Supervisor.StartError {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
    }
}

/// Shared set-up of a child process: die with the supervisor, handle SIGTERM in the loop.
func becomeChild(name: String) {
    _ = rg_set_pdeathsig(SIGKILL)
    if getppid() == 1 { exit(1) }   // the supervisor died before we got here
    _ = rg_set_process_name(name)
    _ = rg_install_signal_flags(0)
}

struct IngestRole: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ingest", abstract: "Internal: the ingest process.",
                                                    shouldDisplay: false)
    @OptionGroup var options: ServeOptions
    @Option(name: .customLong("log-fd")) var logFD: Int32
    @Option(name: .customLong("listen-fd")) var listenFD: Int32
    @Option(name: .customLong("wake-fds")) var wakeFDs: String

    func run() throws {
        becomeChild(name: "ringgate-ingest")
        let config = try options.resolve()
        let logger = makeLogger("ringgate.ingest")
        let fds = wakeFDs.split(separator: ",").compactMap { Int32($0) }
        do {
            let ingest = try Ingest(config: config, logFD: logFD, listenFD: listenFD, wakeFDs: fds, logger: logger)
            ingest.run()
            if ingest.exitCode != 0 { throw ExitCode(ingest.exitCode) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            logger.critical("ingest cannot start: \(error)")
            throw ExitCode(70)
        }
    }
}

struct WorkerRole: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Internal: a worker process.",
                                                    shouldDisplay: false)
    @OptionGroup var options: ServeOptions
    @Option var index: Int
    @Option(name: .customLong("log-fd")) var logFD: Int32
    @Option(name: .customLong("listen-fd")) var listenFD: Int32
    @Option(name: .customLong("wake-fd")) var wakeFD: Int32
    @Option(name: .customLong("admission-fd")) var admissionFD: Int32 = -1

    func run() throws {
        becomeChild(name: "ringgate-w\(index)")
        let config = try options.resolve()
        let logger = makeLogger("ringgate.worker")
        do {
            let worker = try Worker(config: config, index: index,
                                    descriptors: .init(log: logFD, listen: listenFD, wake: wakeFD, admission: admissionFD), logger: logger)
            worker.run()
        } catch {
            logger.critical("worker \(index) cannot start: \(error)")
            throw ExitCode(70)
        }
    }
}
