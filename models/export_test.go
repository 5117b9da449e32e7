package models

import "context"

// MigrateTo applies the migrations up to version v, so that a test can fill
// an older schema and watch a later step rewrite it.
func (s *Store) MigrateTo(ctx context.Context, v int) error { return s.migrateTo(ctx, v) }
