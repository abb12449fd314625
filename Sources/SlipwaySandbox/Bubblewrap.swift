// Bubblewrap: the command line of `bwrap` that runs one of an app's processes in its sandbox. Kept apart from
// starting it, so what a sandbox shows and withholds is read and tested as a list of arguments.
import SlipwayBasics

public enum Bubblewrap {
    /// Where the sandbox shows the helpers Slipway provides an app (the static buildpack's `serve-static`).
    public static let helperDirectory = "/slipway"

    /// `bwrap` arguments that run `command` seeing `files` and `system`, and `helpers` (name -> host path)
    /// read-only in `helperDirectory`.
    ///
    /// - Own PID, IPC and UTS namespaces (and cgroup namespace where the kernel has one): the process sees and
    ///   can signal only its own processes. The network is the host's: instances listen on loopback for the
    ///   proxy, and builds fetch packages.
    /// - No capability, and none to gain: bubblewrap sets `no_new_privs` and `--cap-drop ALL` drops the bounding
    ///   set, which matters when the daemon runs as root.
    /// - A private `/tmp` and `/var/tmp`, a minimal `/dev`, its own `/proc`.
    /// - The environment is the command's own (bwrap passes its environment on), less the markers that only
    ///   the outer process carries. Values go through the environment, never the command line, which every
    ///   user of the host can read in `ps`.
    /// - A session of its own for the command (no terminal to inject input into): Slipway signals that session's
    ///   process group, not bubblewrap's outer process, which a SIGTERM would kill before the app finished
    ///   (see `ChildProcess.signalGroup`).
    public static func arguments(
        for command: Command,
        files: AppFiles,
        system: SystemView,
        helpers: [String: String]
    ) -> [String] {
        var arguments = [
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--cap-drop", "ALL", "--new-session",
        ]
        for path in system.readOnly { arguments += ["--ro-bind", path, path] }
        for link in system.links { arguments += ["--symlink", link.target, link.path] }
        for path in system.readOnlyIfPresent { arguments += ["--ro-bind-try", path, path] }
        arguments += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
        for path in files.writable { arguments += ["--bind", path, path] }
        for path in files.readOnly { arguments += ["--ro-bind", path, path] }
        for (name, host) in helpers.sorted(by: { $0.key < $1.key }) {
            arguments += ["--ro-bind", host, helperDirectory + "/" + name]
        }
        for key in command.markers.keys.sorted() where command.environment[key] == nil {
            arguments += ["--unsetenv", key]
        }
        if let directory = command.workingDirectory { arguments += ["--chdir", directory] }
        return arguments + ["--", command.executable] + command.arguments
    }
}
