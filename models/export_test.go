package models

import "context"

// MigrateTo applies the migrations up to version v, so that a test can fill
// an older schema and watch a later step rewrite it.
func (s *Store) MigrateTo(ctx context.Context, v int) error { return s.migrateTo(ctx, v) }

// MigrationCount is the number of embedded migration steps.
func (s *Store) MigrationCount() int {
	ms, err := migrations(s.driver)
	if err != nil {
		return -1
	}
	return len(ms)
}
