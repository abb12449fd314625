// How an SSH command line becomes words and a repository path becomes an app: without a shell,
// and refusing what could reach outside the data directory.
import SlipwayBasics
import SlipwayFrontDoor
import Testing

@Suite struct CommandLineTests {
    @Test func wordsSplitLikeAShellWouldWithoutExpandingAnything() throws {
        #expect(try CommandLineWords.split("releases shop -n 3") == ["releases", "shop", "-n", "3"])
        #expect(
            try CommandLineWords.split("  config:set shop 'A=b c' \"D=\\\"e\\\"\"  ") == [
                "config:set", "shop", "A=b c", "D=\"e\"",
            ]
        )
        #expect(try CommandLineWords.split("config:set shop X=''") == ["config:set", "shop", "X="])
        #expect(
            try CommandLineWords.split("releases shop; rm -rf / $(id) `id` | cat") == [
                "releases", "shop;", "rm", "-rf", "/", "$(id)", "`id`", "|", "cat",
            ]
        )
        #expect(try CommandLineWords.split("git-receive-pack '/shop.git'") == ["git-receive-pack", "/shop.git"])
        #expect(try CommandLineWords.split("") == [])
    }

    @Test func malformedLinesAreRefused() {
        #expect(throws: CommandLineError.unterminatedQuote) { try CommandLineWords.split("releases 'shop") }
        #expect(throws: CommandLineError.unterminatedQuote) { try CommandLineWords.split("releases shop\\") }
        #expect(throws: CommandLineError.controlCharacter) { try CommandLineWords.split("releases shop\nkeys") }
        #expect(throws: CommandLineError.controlCharacter) { try CommandLineWords.split("releases \u{1b}[2J") }
        #expect(throws: CommandLineError.tooLong(4096)) {
            try CommandLineWords.split(String(repeating: "a", count: 4097))
        }
    }

    @Test func onlyAnAppNameMakesARepositoryPath() {
        for path in ["shop", "shop.git", "/shop.git", "~/shop.git", "shop.git/", "/shop"] {
            #expect(AccessGate.app(inRepositoryPath: path)?.rawValue == "shop", "\(path)")
        }
        for path in ["../etc", "/srv/repos/shop.git", "shop/../../etc", "", "Shop", "shop.git.git", "-shop"] {
            #expect(AccessGate.app(inRepositoryPath: path) == nil, "\(path)")
        }
    }
}
