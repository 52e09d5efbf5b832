package sqlstore_test

import (
	"testing"

	"github.com/cinet/cinet/settlement/storetest"
)

func TestSQLite(t *testing.T)   { storetest.Run(t, storetest.SQLite) }
func TestPostgres(t *testing.T) { storetest.Run(t, storetest.Postgres) }
