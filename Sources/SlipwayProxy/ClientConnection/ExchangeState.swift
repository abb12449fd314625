// ExchangeState: the phases of one request and its answer on a client connection, and the one place that
// decides how an exchange ends: answered in the proxy's words or cut off, and what the connection does after
// the answer. It returns actions; ClientConnectionHandler carries them out, letting go of the exchange's claim
// on an instance (what a drain counts) as each action ends the instance's part. An HTTP/2 stream would drive
// the same state, with "reset the stream" for "close the connection". Tested without sockets in
// ExchangeStateTests.

/// One exchange's progress. A value: the handler keeps it in its `Exchange` and asks it what to do next.
struct ExchangeState: Equatable {
    enum Answer: Equatable {
        /// Nothing final went out yet, so the proxy can still answer in its own words.
        case none
        /// A final head went out; only closing the connection can tell the client the answer broke off.
        case started
        /// The answer's last byte was handed to the connection.
        case written
    }

    private(set) var answer = Answer.none
    private(set) var requestEnded = false
    /// Whether the client connection stays open after this answer.
    private(set) var keepAlive: Bool

    init(keepAlive: Bool) {
        self.keepAlive = keepAlive
    }

    /// The connection will close after this answer: the client said so, the answer's framing needs it, or
    /// what the client still sends cannot be skipped to reach a next request.
    mutating func closeAfterAnswer() {
        keepAlive = false
    }

    /// A final answer head goes out. A client waiting for `100 Continue` never sends the body that would have
    /// to be skipped to reach its next request, so its connection closes after the answer.
    mutating func answerStarts(clientAwaitsContinue: Bool) {
        if !requestEnded && clientAwaitsContinue { keepAlive = false }
        answer = .started
    }

    /// How the proxy gives up on an exchange before its answer is complete.
    enum Ending: Equatable {
        /// No answer started: the client gets the proxy's own, and the claim ends with its last byte.
        case answer
        /// The answer started: the claim ends and the connection is cut, since nothing else tells the client
        /// the answer broke off.
        case cut
    }

    /// The proxy stops forwarding (the caller closes the instance connection); `closing` when the client
    /// connection cannot be used after this answer.
    mutating func giveUp(closing: Bool) -> Ending {
        if closing { keepAlive = false }
        return answer == .none ? .answer : .cut
    }

    /// What the connection does once both halves of an exchange are over, or one of them is.
    enum Next: Equatable {
        /// Wait: the other half of the exchange is not over yet.
        case wait
        /// Read the next request (pipelined ones may already be waiting).
        case readNext
        /// Stop writing, drop what the client still sends for a moment, then close: closing at once while it
        /// sends would reset the connection, which can destroy the answer before the client reads it.
        case lingerThenClose
        case close
    }

    /// The answer's last byte is written.
    mutating func answerWritten() -> Next {
        answer = .written
        if keepAlive { return requestEnded ? .readNext : .wait }
        return requestEnded ? .close : .lingerThenClose
    }

    /// The client sent the request's last byte.
    mutating func requestEnds() -> Next {
        requestEnded = true
        return answer == .written && keepAlive ? .readNext : .wait
    }
}
