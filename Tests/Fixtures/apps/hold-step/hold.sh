# hold-step (laid over node-hello): holds a deploy step open for fault-injection tests. When the file
# HOLD names this step, it says "holding the STEP step" in its output (which the tests read in the release's
# log or the instance's) and waits (bounded) instead of going on. It runs sandboxed, so it writes nothing else.
if [ "$(cat HOLD 2>/dev/null)" = "$1" ]; then
  echo "holding the $1 step"
  sleep 300
fi
