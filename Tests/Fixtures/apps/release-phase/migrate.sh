# The release phase of this fixture (laid over node-hello): says what it migrates, and fails when MIGRATION_EXIT says so.
echo "migrating the database for $SLIPWAY_RELEASE"
exit "${MIGRATION_EXIT:-0}"
