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

// A Transaction is one balanced posting: the lines of one usage record.
type Transaction struct {
	ID       string // the record ID: posting is idempotent by it
	Record   RecordID
	Role     Role
	Currency string
	PostedAt time.Time
	Lines    []Line
}

// A Line moves an amount into (positive) or out of (negative) an account.
type Line struct {
	Account Account
	Amount  descriptor.Nanos
	Item    *RatedItem // the rated stretch the line prices; nil for fee lines
	Fee     string     // "home" or "executing" for fee lines
}

// post builds the transaction of a rated record for this broker's role:
//
//	local:     tenant −(item+fees)   provider +item   fees/self +fees
//	home:      tenant −(item+fees)   clearing/exec +(item+exec fee)   fees/self +home fee
//	executing: clearing/home −(item+exec fee)   provider +item   fees/self +exec fee
//
// so that the home broker's clearing account for the executing broker
// mirrors the executing broker's account for the home broker.
func post(r *UsageRecord, id RecordID, rating *Rating, self identity.PrincipalID, now time.Time) (*Transaction, error) {
	tx := &Transaction{ID: string(id), Record: id, Currency: rating.Currency, PostedAt: now}
	tenant := AccountOf(TenantAccounts, r.Tenant)
	provider := AccountOf(ProviderAccounts, r.Provider)
	fees := AccountOf(FeeAccounts, self)
	var payer, payee Account // who pays the provider's charge, and who receives it
	switch {
	case r.HomeBroker == self && r.ExecutingBroker == self:
		tx.Role, payer, payee = RoleLocal, tenant, provider
	case r.HomeBroker == self:
		tx.Role, payer, payee = RoleHome, tenant, AccountOf(ClearingAccounts, r.ExecutingBroker)
	case r.ExecutingBroker == self:
		tx.Role, payer, payee = RoleExecuting, AccountOf(ClearingAccounts, r.HomeBroker), provider
	default:
		return nil, fmt.Errorf("settlement: %s is neither the home nor the executing broker", self)
	}
	for i := range rating.Items {
		it := &rating.Items[i]
		tx.Lines = append(tx.Lines, Line{Account: payer, Amount: -it.Amount, Item: it}, Line{Account: payee, Amount: it.Amount, Item: it})
	}
	pair := func(from, to Account, amount descriptor.Nanos, which string) {
		if amount != 0 {
			tx.Lines = append(tx.Lines, Line{Account: from, Amount: -amount, Fee: which}, Line{Account: to, Amount: amount, Fee: which})
		}
	}
	switch tx.Role {
	case RoleLocal:
		pair(tenant, fees, rating.HomeFee, "home")
		pair(tenant, fees, rating.ExecutingFee, "executing")
	case RoleHome:
		pair(tenant, fees, rating.HomeFee, "home")
		pair(tenant, payee, rating.ExecutingFee, "executing")
	case RoleExecuting:
		pair(payer, fees, rating.ExecutingFee, "executing")
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
