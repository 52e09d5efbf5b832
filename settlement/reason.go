package settlement

// A Reason says why a usage record was refused. Refusals are kept out of
// the books and appended to the audit log with their reason.
type Reason string

// Refusal reasons (spec/usage-record.md).
const (
	ReasonMalformed         Reason = "malformed"          // not an envelope holding a record
	ReasonBadSignature      Reason = "bad_signature"      // signature, payload type or signer check failed
	ReasonUnknownBroker     Reason = "unknown_broker"     // the executing broker is not one this broker settles with
	ReasonNotInvolved       Reason = "not_involved"       // this broker is neither home nor executing broker
	ReasonUnknownOffer      Reason = "unknown_offer"      // no price schedule for the record's offer
	ReasonOfferMismatch     Reason = "offer_mismatch"     // compute identifier, provider or executing broker differ from the offer's
	ReasonUnknownMeter      Reason = "unknown_meter"      // a meter cinet does not price
	ReasonInvalidQuantity   Reason = "invalid_quantity"   // negative or not a decimal
	ReasonAbsurdQuantity    Reason = "absurd_quantity"    // more than the instances could have used in the period
	ReasonInvalidPeriod     Reason = "invalid_period"     // end not after start, not UTC, or too long
	ReasonFuturePeriod      Reason = "future_period"      // ends after now
	ReasonOverlappingPeriod Reason = "overlapping_period" // overlaps a settled period of the same placement
	ReasonInvalidFee        Reason = "invalid_fee"        // a fee rate outside [0, 1]
	ReasonUnpriced          Reason = "unpriced"           // a meter the offer's schedule has no rate for
)

// Transient reports whether a reason may no longer hold when the same
// bytes arrive again: the period may have come, the offer or the broker
// may have become known. Refusals for other reasons are final.
func (r Reason) Transient() bool {
	switch r {
	case ReasonFuturePeriod, ReasonUnknownOffer, ReasonUnknownBroker:
		return true
	}
	return false
}
