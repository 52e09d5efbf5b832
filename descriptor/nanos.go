package descriptor

import (
	"github.com/cockroachdb/apd/v3"

	"github.com/cinet/cinet/descriptor/money"
)

// Nanos is an amount of money in billionths of a currency unit
// (money.Nanos): matching estimates cost in Nanos; the settlement ledger
// keeps its amounts in Nanos.
type Nanos = money.Nanos

// MaxNanos stands for "more than can be represented".
const MaxNanos = money.MaxNanos

// NanosFromDecimal converts a non-negative decimal to Nanos, rounding a
// fraction of a nano up (money.FromDecimal).
func NanosFromDecimal(d *apd.Decimal) Nanos { return money.FromDecimal(d) }

// ParseNanos reads a decimal with at most nine places (money.ParseNanos).
func ParseNanos(s string) (Nanos, error) { return money.ParseNanos(s) }
