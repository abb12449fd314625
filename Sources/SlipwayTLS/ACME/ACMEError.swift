import SlipwayBasics

public enum ACMEError: UserFacingError {
    case unreachable(url: String, reason: String)
    case refused(step: String, problem: String)
    case unexpected(step: String, what: String)
    case validationFailed(host: String, problem: String, toMake: String)
    case timedOut(step: String)

    public var description: String {
        switch self {
        case .unreachable(let url, let reason):
            "could not reach the ACME server at \(url): \(reason); check --acme-directory and the network"
        case .refused(let step, let problem): "the ACME server refused to \(step): \(problem)"
        case .unexpected(let step, let what): "the ACME server's answer to \(step) was not understood: \(what)"
        case .validationFailed(let host, let problem, let reachable):
            "the ACME server could not check that this server answers for \(host): \(problem); point the name's DNS "
                + "at this server and let \(reachable)"
        case .timedOut(let step): "the ACME server did not finish \(step) in time; it is tried again later"
        }
    }
}
