package settlement

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// An Account is a ledger account: "tenant/<did>", "provider/<did>",
// "fees/<broker did>" or "clearing/<broker did>". Balances are
// credit-positive: a positive balance is owed by this broker to the
// account's holder (a provider's earnings, fees earned, what it owes
// another broker); a negative one is owed to this broker (a tenant's
// charges, what another broker owes it).
type Account string

// Account kinds.
const (
	TenantAccounts   = "tenant"
	ProviderAccounts = "provider"
	FeeAccounts      = "fees"
	ClearingAccounts = "clearing"
)

// AccountOf returns the account of a kind for a principal.
func AccountOf(kind string, id identity.PrincipalID) Account {
	return Account(kind + "/" + id.String())
}

// ParseAccount checks an account name.
func ParseAccount(s string) (Account, error) {
	kind, id, ok := strings.Cut(s, "/")
	switch kind {
	case TenantAccounts, ProviderAccounts, FeeAccounts, ClearingAccounts:
	default:
		return "", fmt.Errorf("settlement: account %q: want tenant/, provider/, fees/ or clearing/ and a principal ID", s)
	}
	if !ok {
		return "", fmt.Errorf("settlement: account %q has no principal ID", s)
	}
	if _, err := identity.ParsePrincipalID(id); err != nil {
		return "", fmt.Errorf("settlement: account %q: %w", s, err)
	}
	return Account(s), nil
}

// Kind returns the account's kind.
func (a Account) Kind() string { k, _, _ := strings.Cut(string(a), "/"); return k }

// A Role is the part this broker played in a record.
type Role string

// Roles.
const (
	RoleLocal     Role = "local"     // home and executing broker
	RoleHome      Role = "home"      // the tenant's broker; another executed
	RoleExecuting Role = "executing" // ran the job for another broker's tenant
)

// A Transaction is one balanced journal entry: what one usage record moves
// between this broker's accounts. Its lines name each account once; its
// items and fees are the rated detail behind them.
type Transaction struct {
	ID           string // the record ID: posting is idempotent by it
	Record       RecordID
	Role         Role
	Currency     string
	PostedAt     time.Time
	LogIndex     int64            // of its ledger-transaction entry in the audit log
	Items        []RatedItem      // the provider's charge, stretch by stretch
	HomeFee      descriptor.Nanos // the home broker's fee on the charge
	ExecutingFee descriptor.Nanos // the executing broker's fee on the charge
	Lines        []Line
}

// A Line moves an amount into (positive) or out of (negative) an account.
type Line struct {
	Account Account
	Amount  descriptor.Nanos
}

// Charge is the sum of the transaction's items: what the provider earns.
func (tx *Transaction) Charge() (descriptor.Nanos, error) {
	var sum descriptor.Nanos
	for _, it := range tx.Items {
		var err error
		if sum, err = sum.CheckedAdd(it.Amount); err != nil {
			return 0, fmt.Errorf("settlement: transaction %s: %w", tx.ID, err)
		}
	}
	return sum, nil
}

// Amount is the net amount the transaction moves into account.
func (tx *Transaction) Amount(account Account) descriptor.Nanos {
	var n descriptor.Nanos
	for _, l := range tx.Lines {
		if l.Account == account {
			n += l.Amount
		}
	}
	return n
}

// post builds the transaction of a rated record for this broker's role.
// With C the provider's charge, H the home fee and E the executing fee:
//
//	local:     tenant −(C+H+E)   provider +C          fees/self +(H+E)
//	home:      tenant −(C+H+E)   clearing/exec +(C+E) fees/self +H
//	executing: clearing/home −(C+E)   provider +C     fees/self +E
//
// so that the home broker's clearing account for the executing broker
// mirrors the executing broker's account for the home broker. Lines of
// zero are left out.
func post(r *UsageRecord, id RecordID, rating *Rating, self identity.PrincipalID, now time.Time) (*Transaction, error) {
	tx := &Transaction{ID: string(id), Record: id, Currency: rating.Currency, PostedAt: now,
		Items: rating.Items, HomeFee: rating.HomeFee, ExecutingFee: rating.ExecutingFee}
	// Rate refuses a record whose C+H+E overflows, so these sums cannot.
	c, h, e := rating.Charge, rating.HomeFee, rating.ExecutingFee
	sum := func(ns ...descriptor.Nanos) descriptor.Nanos {
		var t descriptor.Nanos
		for _, n := range ns {
			t += n
		}
		return t
	}
	tenant := AccountOf(TenantAccounts, r.Tenant)
	provider := AccountOf(ProviderAccounts, r.Provider)
	fees := AccountOf(FeeAccounts, self)
	var lines []Line
	switch {
	case r.HomeBroker == self && r.ExecutingBroker == self:
		tx.Role = RoleLocal
		lines = []Line{{tenant, -sum(c, h, e)}, {provider, c}, {fees, sum(h, e)}}
	case r.HomeBroker == self:
		tx.Role = RoleHome
		lines = []Line{{tenant, -sum(c, h, e)}, {AccountOf(ClearingAccounts, r.ExecutingBroker), sum(c, e)}, {fees, h}}
	case r.ExecutingBroker == self:
		tx.Role = RoleExecuting
		lines = []Line{{AccountOf(ClearingAccounts, r.HomeBroker), -sum(c, e)}, {provider, c}, {fees, e}}
	default:
		return nil, fmt.Errorf("settlement: %s is neither the home nor the executing broker", self)
	}
	for _, l := range lines {
		if l.Amount != 0 {
			tx.Lines = append(tx.Lines, l)
		}
	}
	if err := tx.checkBalanced(); err != nil {
		return nil, err
	}
	return tx, nil
}

// checkBalanced enforces double entry: the lines of a transaction sum to
// zero. Stores check it again before they write.
func (tx *Transaction) checkBalanced() error {
	var sum descriptor.Nanos
	for _, l := range tx.Lines {
		var err error
		if sum, err = sum.CheckedAdd(l.Amount); err != nil {
			return fmt.Errorf("settlement: transaction %s: %w", tx.ID, err)
		}
	}
	if sum != 0 {
		return fmt.Errorf("settlement: transaction %s does not balance: lines sum to %s %s", tx.ID, sum.Decimal(), tx.Currency)
	}
	return nil
}

// Deltas returns the net change the transaction makes to each account.
func (tx *Transaction) Deltas() map[Account]descriptor.Nanos {
	d := map[Account]descriptor.Nanos{}
	for _, l := range tx.Lines {
		d[l.Account] += l.Amount
	}
	return d
}

// TenantCharge is what the transaction charges the tenant (0 when this
// broker is only the executing broker).
func (tx *Transaction) TenantCharge() descriptor.Nanos {
	var n descriptor.Nanos
	for _, l := range tx.Lines {
		if l.Account.Kind() == TenantAccounts {
			n -= l.Amount
		}
	}
	return n
}

// A Balance is an account's balance in one currency.
type Balance struct {
	Account  Account
	Currency string
	Amount   descriptor.Nanos
}

// SortBalances orders balances by account, then currency.
func SortBalances(b []Balance) {
	sort.Slice(b, func(i, j int) bool {
		if b[i].Account != b[j].Account {
			return b[i].Account < b[j].Account
		}
		return b[i].Currency < b[j].Currency
	})
}
