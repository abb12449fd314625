# As the apt buildpack's profile script does: its tools are found through $HOME, the release tree.
export TOOLS_AT="$HOME/tools"
