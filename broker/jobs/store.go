package jobs

import (
	"context"
	"time"
)

// A Store keeps jobs. Implementations: broker/store (SQLite, PostgreSQL,
// CockroachDB); every one passes broker/jobs/jobstest.
type Store interface {
	// Create keeps a new job; ErrExists if its ID is taken.
	Create(ctx context.Context, j *Job) error
	// Get returns a job; ErrNotFound if there is none.
	Get(ctx context.Context, id string) (*Job, error)
	// Update replaces a job if its stored version is j.Version, and
	// increments j.Version; ErrConflict otherwise.
	Update(ctx context.Context, j *Job) error
	// List returns jobs newest first.
	List(ctx context.Context, f Filter) ([]*Job, error)
	// Active returns every job not yet settled, oldest first.
	Active(ctx context.Context) ([]*Job, error)
	// Counts returns how many jobs are in each state.
	Counts(ctx context.Context) (map[State]int, error)
}

// A Filter selects jobs to list.
type Filter struct {
	Tenant string    // "" for every tenant's
	State  State     // "" for every state
	Before time.Time // only jobs created before this (paging); zero for no bound
	Limit  int       // at most this many (default 100, at most 1000)
}
