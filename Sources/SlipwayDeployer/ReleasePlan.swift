// ReleasePlan: how one release goes live, as a value: where its tree comes from and which steps run. Every way a
// release goes live (a push or a deploy of a ref, a rollback, a promotion, a config change) is a plan, carried out
// by the one pipeline in Deployer+Pipeline: tree, release phase, boot beside the live release, health checks,
// switch, drain. A new kind of release is a new plan; a new way to replace the live set belongs in that pipeline.
import SlipwayBasics
import SlipwayStore

struct ReleasePlan {
    /// How the release's instances take over from the live ones. Other strategies (a canary share, holding
    /// requests while a single instance restarts, keeping the old set warm to switch back) are new cases here and
    /// in `Deployer.replace`, without touching the steps before them.
    enum Replacement {
        /// The whole new set boots beside the live one in batches, each health-checked; then the proxy switches in
        /// one step and the old set drains.
        case bootBesideThenSwitch
    }

    enum Tree {
        /// Checked out from the release's commit and built.
        case build
        /// An earlier release's built tree, as it is (a rollback, a config change).
        case reuse
        /// Another app's built tree, copied (a promotion).
        case copy(from: AppName, tree: ReleaseVersion)
    }

    /// The release, already recorded as started.
    var release: Release
    var tree: Tree
    /// The first line the pusher sees of it, when its first step does not say it.
    var announcement: String?
    var runsReleasePhase = true
    /// The release's config becomes the app's once it is live (it differs from the app's: a rollback, a change).
    var appliesConfig = false
    var replacement = Replacement.bootBesideThenSwitch
}
