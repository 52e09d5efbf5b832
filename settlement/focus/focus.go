// Package focus writes settled usage as a FOCUS 1.2 cost and usage dataset
// (FinOps Open Cost and Usage Specification, https://focus.finops.org) in
// CSV: the 21 mandatory columns, the conditional ones cinet can fill, and
// x_ columns for what FOCUS has no column for. spec/usage-record.md,
// "FOCUS export", maps each column.
package focus

import (
	"encoding/csv"
	"fmt"
	"io"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// Columns is the header, in output order: the mandatory columns, the
// conditional and recommended ones, then cinet's own.
var Columns = []string{
	// Mandatory in FOCUS 1.2.
	"BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
	"BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
	"ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
	"EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
	"ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
	// Conditional and recommended.
	"AvailabilityZone", "ChargeFrequency", "ConsumedQuantity", "ConsumedUnit",
	"ContractedUnitPrice", "ListUnitPrice", "PricingCurrency", "RegionId", "RegionName",
	"ResourceId", "SkuId", "SkuPriceId",
	// cinet's.
	"x_AcceleratorModel", "x_AcceleratorSeconds", "x_ComputeId", "x_JobId", "x_LogIndex",
	"x_RecordId", "x_Role", "x_Tier", "x_Tokens",
}

// An Export is what to write.
type Export struct {
	// Broker is the broker whose books these are: the invoice issuer.
	Broker identity.PrincipalID
	// Account selects the rows: the charges behind what the transactions
	// moved in that account. When empty, each transaction is shown from
	// the side this broker bills — its tenant (local and home roles) or
	// the home broker's clearing account (executing role).
	Account  settlement.Account
	From, To time.Time
	// Transactions are those that moved Account (or all) for records whose
	// period ends in [From, To), as settlement.Settler.Statement returns.
	Transactions []*settlement.TransactionRow
}

// A row is one charge: a rated item or a broker's fee.
type row struct {
	tx      *settlement.TransactionRow
	account settlement.Account
	item    *settlement.RatedItem // nil for a fee
	fee     string                // "home" or "executing"
	amount  descriptor.Nanos
}

// Rows returns the charges behind each transaction's movement of the
// account. Their BilledCost sums to the absolute amount moved.
func (e *Export) rows() []row {
	var out []row
	for _, t := range e.Transactions {
		account := e.Account
		if account == "" {
			account = billed(t)
		}
		items, home, exec := parts(t, account)
		if items {
			for i := range t.Items {
				out = append(out, row{tx: t, account: account, item: &t.Items[i], amount: t.Items[i].Amount})
			}
		}
		if home && t.HomeFee != 0 {
			out = append(out, row{tx: t, account: account, fee: "home", amount: t.HomeFee})
		}
		if exec && t.ExecutingFee != 0 {
			out = append(out, row{tx: t, account: account, fee: "executing", amount: t.ExecutingFee})
		}
	}
	return out
}

// billed is the account a transaction bills: the tenant, or for the
// executing broker the home broker's clearing account.
func billed(t *settlement.TransactionRow) settlement.Account {
	for _, l := range t.Lines {
		if l.Account.Kind() == settlement.TenantAccounts {
			return l.Account
		}
	}
	for _, l := range t.Lines {
		if l.Account.Kind() == settlement.ClearingAccounts {
			return l.Account
		}
	}
	return ""
}

// parts says which charges make up an account's line in a transaction
// (spec/usage-record.md, "Ledger"): the tenant pays items and both fees,
// the provider earns the items, the clearing account carries the items and
// the executing fee, the fee account earns this broker's fees.
func parts(t *settlement.TransactionRow, account settlement.Account) (items, home, exec bool) {
	switch account.Kind() {
	case settlement.TenantAccounts:
		return true, true, true
	case settlement.ProviderAccounts:
		return true, false, false
	case settlement.ClearingAccounts:
		return true, false, true
	case settlement.FeeAccounts:
		return false, t.Role != settlement.RoleExecuting, t.Role != settlement.RoleHome
	}
	return false, false, false
}

// Write writes the export as CSV with a header.
func Write(w io.Writer, e *Export) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Columns); err != nil {
		return err
	}
	for _, r := range e.rows() {
		if err := cw.Write(e.record(r)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

const timeLayout = "2006-01-02T15:04:05Z"

func (e *Export) record(r row) []string {
	rec := r.tx.Usage
	cid, _ := identity.ParseComputeID(rec.ComputeID)
	cost := r.amount.Decimal()
	v := map[string]string{
		"BilledCost": cost, "ContractedCost": cost, "EffectiveCost": cost, "ListCost": cost,
		"BillingAccountId": string(r.account), "BillingAccountName": string(r.account),
		"BillingCurrency": r.tx.Currency, "PricingCurrency": r.tx.Currency,
		"BillingPeriodStart": e.From.UTC().Format(timeLayout), "BillingPeriodEnd": e.To.UTC().Format(timeLayout),
		"ChargeCategory": "Usage", "ChargeClass": "", "ChargeFrequency": "Usage-Based",
		"InvoiceIssuerName": e.Broker.String(),
		"ProviderName":      rec.Provider, "PublisherName": rec.Provider,
		"RegionId": cid.Region, "RegionName": cid.Region, "AvailabilityZone": cid.Zone,
		"ResourceId": rec.Placement, "SkuId": rec.Offer,
		"x_ComputeId": rec.ComputeID, "x_JobId": rec.Job, "x_LogIndex": fmt.Sprint(rec.LogIndex),
		"x_RecordId": string(r.tx.Transaction.Record), "x_Role": string(r.tx.Role),
		"ChargePeriodStart": rec.PeriodStart.UTC().Format(timeLayout), "ChargePeriodEnd": rec.PeriodEnd.UTC().Format(timeLayout),
	}
	if it := r.item; it != nil {
		svc := services[it.Meter]
		v["ChargePeriodStart"], v["ChargePeriodEnd"] = it.Start.UTC().Format(timeLayout), it.End.UTC().Format(timeLayout)
		v["ServiceCategory"], v["ServiceName"] = svc.category, svc.name
		v["PricingQuantity"], v["PricingUnit"] = it.PricingQuantity, it.PricingUnit
		v["ListUnitPrice"], v["ContractedUnitPrice"] = it.UnitPrice, it.UnitPrice
		v["ConsumedQuantity"], v["ConsumedUnit"] = it.ConsumedQty, settlement.ConsumedUnit(it.Meter)
		v["SkuPriceId"] = rec.Offer + "#" + string(it.Meter) + tierSuffix(it.Tier)
		v["x_Tier"] = it.Tier
		desc := fmt.Sprintf("%s %s on %s at %s %s per %s", it.ConsumedQty, it.Meter, rec.ComputeID, it.UnitPrice, r.tx.Currency, it.PricingUnit)
		switch it.Meter {
		case settlement.AcceleratorSeconds:
			v["x_AcceleratorModel"], v["x_AcceleratorSeconds"] = it.Model, it.ConsumedQty
			desc = fmt.Sprintf("%s %s accelerator-seconds on %s at %s %s per %s", it.ConsumedQty, it.Model, rec.ComputeID, it.UnitPrice, r.tx.Currency, it.PricingUnit)
		case settlement.TokensIn, settlement.TokensOut, settlement.TokensCached:
			v["x_Tokens"] = it.ConsumedQty
		}
		if it.Tier != "" {
			desc += " (" + it.Tier + " rates)"
		}
		v["ChargeDescription"] = desc
	} else {
		broker := rec.HomeBroker
		if r.fee == "executing" {
			broker = rec.ExecutingBroker
		}
		v["ServiceCategory"], v["ServiceName"] = "Other", "cinet brokerage"
		v["ProviderName"], v["PublisherName"] = broker, broker
		v["PricingQuantity"], v["PricingUnit"] = "1", "Fee"
		v["ChargeDescription"] = fmt.Sprintf("%s broker fee (%s) on the provider's charge for record %s", r.fee, broker, r.tx.Transaction.Record)
		v["SkuPriceId"] = rec.Offer + "#fee-" + r.fee
	}
	out := make([]string, len(Columns))
	for i, c := range Columns {
		out[i] = v[c]
	}
	return out
}

func tierSuffix(t string) string {
	if t == "" {
		return ""
	}
	return "@" + t
}

// services maps meters to FOCUS service categories and cinet service names.
var services = map[settlement.MeterKind]struct{ category, name string }{
	settlement.InstanceSeconds:    {"Compute", "cinet compute"},
	settlement.VCPUSeconds:        {"Compute", "cinet compute"},
	settlement.GiBSeconds:         {"Compute", "cinet compute"},
	settlement.AcceleratorSeconds: {"Compute", "cinet compute"},
	settlement.TokensIn:           {"AI and Machine Learning", "cinet inference"},
	settlement.TokensOut:          {"AI and Machine Learning", "cinet inference"},
	settlement.TokensCached:       {"AI and Machine Learning", "cinet inference"},
	settlement.EgressBytes:        {"Networking", "cinet network"},
}
