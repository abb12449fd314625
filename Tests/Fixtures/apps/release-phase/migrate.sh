# The release phase of this fixture: says what it migrates, and fails when MIGRATION_EXIT says so.
echo "migrating the database for $SLIPWAY_RELEASE"
exit "${MIGRATION_EXIT:-0}"
