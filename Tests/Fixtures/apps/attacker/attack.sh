# attacker (laid over node-hello): what a tenant holding only a deploy key tries from inside its build, its
# release phase and its web process. TARGET_DATA (the daemon's data directory) and TARGET_PID (another app's
# instance) come from config, as an attacker would learn them. Each attempt prints "attack STAGE NAME: blocked"
# or "...: ALLOWED"; nothing here may ever be allowed. Signals use kill -0, so a hole is reported, not used.
stage=$1
attempt() {
  name=$1
  shift
  if (eval "$@") > /dev/null 2>&1; then echo "attack $stage $name: ALLOWED"; else echo "attack $stage $name: blocked"; fi
}
attempt read-database 'test -n "$(cat "$TARGET_DATA/slipway.sqlite")"'
attempt read-host-key 'cat "$TARGET_DATA/ssh_host_ed25519_key"'
attempt list-other-app 'ls "$TARGET_DATA/apps/beta/releases" | grep -q .'
attempt read-other-environ 'cat /proc/[0-9]*/environ | tr "\0" "\n" | grep -q BETA_SECRET'
attempt use-control-socket '"$TARGET_DATA/bin/slipway" apps --data "$TARGET_DATA"'
attempt find-slipway 'command -v slipway'
attempt write-other-hook 'echo "echo pwned" >> "$TARGET_DATA/repos/beta.git/hooks/post-receive"'
attempt signal-other-app 'kill -0 "$TARGET_PID"'
# The app's own tree and cache are shown at their paths on the host (its working directory, PATH entries a
# .profile.d script adds, npm's variables, and the node_modules/.bin of each folder above the tree that npm puts
# on PATH); nothing else may name the data directory (no SLIPWAY_DATA, no <data>/bin on PATH).
attempt see-data-directory 'env | grep -v "^TARGET_DATA=" | sed -e "s#$TARGET_DATA/apps/alpha/##g" \
  -e "s#[^:]*/node_modules/.bin##g" | grep -q "$TARGET_DATA"'
attempt see-daemon 'for exe in /proc/[0-9]*/exe; do readlink "$exe"; done | grep -q "/slipway$"'
exit 0
