import Logging
// Services: the daemon's long-running parts as ServiceLifecycle services, each run and shut down in the group's
// order, and the recorder that keeps the store's instance table in step with the supervisor.
import ServiceLifecycle
import SlipwayBasics
import SlipwayDeployer
import SlipwayFrontDoor
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor

/// Keeps the store's instance table in step with what the supervisor reports.
enum InstanceRecorder {
    static func record(_ event: InstanceEvent, of instance: Instance, in store: AppDatabase, logger: Logger) {
        do {
            switch event {
            case .started(let pid, let startTime):
                _ = try store.recordInstance(
                    InstanceRecord(
                        app: instance.spec.app,
                        release: instance.spec.release,
                        processType: instance.spec.processType,
                        processIndex: instance.spec.index,
                        pid: pid,
                        startTime: startTime,
                        port: instance.port
                    )
                )
            case .serving:
                try store.setInstanceStatus(pid: instance.pid, .serving)
            case .crashed(let status, _):
                try store.setInstanceStatus(pid: instance.pid, .crashed, exitReason: status.description)
            case .stopped(let status):
                try store.setInstanceStatus(pid: instance.pid, .stopped, exitReason: status.description)
            }
        } catch {
            logger.error("could not record an instance event", metadata: ["error": "\(error)"])
        }
    }
}

struct ProxyService: Service {
    let proxy: ProxyServer
    let shutdownTimeout: Duration

    func run() async throws {
        try? await gracefulShutdown()
        await proxy.stop(finishingWithin: shutdownTimeout)
    }
}

struct DeployerService: Service {
    let deployer: Deployer
    let startup: StartupReport
    let stopApps: Bool

    func run() async throws {
        await deployer.restore(startup)
        try? await gracefulShutdown()
        await deployer.shutdown(stopApps: stopApps)
    }
}

struct LogRotationService: Service {
    let supervisor: Supervisor

    func run() async throws {
        await cancelWhenGracefulShutdown { await supervisor.keepLogsRotated(every: .seconds(10)) }
    }
}

struct CertificateService: Service {
    let keeper: CertificateKeeper

    func run() async throws {
        await cancelWhenGracefulShutdown { await keeper.run() }
    }
}

struct ControlService: Service {
    let server: ControlServer

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await server.run() }
        } catch is CancellationError {
            // The graceful shutdown itself: the socket is closed, nothing went wrong.
        }
    }
}

struct SSHService: Service {
    let server: SSHServer
    let shutdownTimeout: Duration
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await server.run(finishingWithin: shutdownTimeout) { port in
                logger.info("ssh server listening", metadata: ["ssh.port": "\(port)"])
            }
        }
    }
}
