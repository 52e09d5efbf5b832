package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/federation"
	"github.com/cinet/cinet/broker/offers"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// viewOf is an offer in the book as the API lists it.
func viewOf(e *book.Entry, free int) (v1.Offer, error) {
	o, err := e.Offer()
	if err != nil {
		return v1.Offer{}, err
	}
	env, err := e.Envelope()
	if err != nil {
		return v1.Offer{}, err
	}
	body, err := json.Marshal(o)
	if err != nil {
		return v1.Offer{}, err
	}
	return v1.Offer{
		Name: e.Name, ComputeID: o.ComputeID, Digest: e.Digest(), Provider: o.Provider, Broker: e.Owner,
		Region: o.Region, Quantity: o.Quantity, Free: free, ValidUntil: o.ValidUntil, Sequence: o.Sequence,
		Offer: body, Envelope: env,
	}, nil
}

func (s *Server) registerOffer(w http.ResponseWriter, r *http.Request, c *Caller) {
	doc, err := s.cfg.Offers.Register(r.Context(), c.body, c.Principal)
	if err != nil {
		if errors.Is(err, offers.ErrInvalid) {
			p := &Problem{Type: ProblemType("invalid-offer"), Title: "Unprocessable Content", Status: http.StatusUnprocessableEntity, Detail: err.Error()}
			var list descriptor.ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					p.Errors = append(p.Errors, DocumentError{Line: e.Line, Column: e.Col, Path: e.Path, Message: e.Msg})
				}
			}
			writeProblem(w, p)
			return
		}
		s.internal(w, r, err)
		return
	}
	e, ok := s.cfg.Book.Get(doc.Offer.ComputeID.Name())
	if !ok {
		s.internal(w, r, fmt.Errorf("the offer %s left the book as it was registered", doc.Offer.ComputeID))
		return
	}
	v, err := viewOf(e, s.cfg.Book.Free(e))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listOffers(w http.ResponseWriter, r *http.Request, c *Caller) {
	want := r.URL.Query().Get("provider")
	out := []v1.Offer{}
	for _, e := range s.cfg.Book.Snapshot() {
		if want == "" || e.Attrs.Provider == want {
			v, err := viewOf(e, s.cfg.Book.Free(e))
			if err != nil {
				s.internal(w, r, err)
				return
			}
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"offers": out})
}

func (s *Server) withdrawOffer(w http.ResponseWriter, r *http.Request, c *Caller) {
	name := r.PathValue("name")
	e, ok := s.cfg.Book.Get(name)
	if !ok || (c.Role != Operator && e.ProvidedBy != c.Principal) {
		problem(w, http.StatusNotFound, "offer-not-found", "Not Found", "no offer of yours named "+name)
		return
	}
	if e.Owner != s.cfg.Key.ID() {
		problem(w, http.StatusConflict, "offer-owned-elsewhere", "Conflict", fmt.Sprintf("%s is owned by broker %s: withdraw it there", name, e.Owner))
		return
	}
	if err := s.cfg.Offers.Withdraw(r.Context(), name); err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"withdrawn": name})
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ *Caller) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.cfg.OpenAPI)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *Caller) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *Caller) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(ctx); err != nil {
			s.cfg.Log.Warn("not ready", "err", err)
			problem(w, http.StatusServiceUnavailable, "not-ready", "Service Unavailable", "the broker's databases do not answer; its operator's log has the cause")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ *Caller) {
	if s.cfg.Metrics == nil {
		problem(w, http.StatusNotFound, "not-found", "Not Found", "metrics are off")
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}

// Info is what the broker says of itself to anyone: what a caller needs
// before signing in (whom it talks to) and a verifier needs to check the
// audit log; nothing of its load or internals.
type Info = v1.Info

func (s *Server) info(w http.ResponseWriter, r *http.Request, _ *Caller) {
	vkey := s.cfg.Settler.VerifierKey()
	origin, _, _ := cutPlus(vkey)
	writeJSON(w, http.StatusOK, Info{Broker: s.cfg.Key.ID(), Region: s.cfg.Region, LogOrigin: origin, VerifierKey: vkey})
}

func (s *Server) federation(w http.ResponseWriter, r *http.Request, _ *Caller) {
	if s.cfg.Federation == nil {
		problem(w, http.StatusNotFound, "no-federation", "Not Found", "this broker runs alone: its configuration has no federation section")
		return
	}
	st, err := wireFederation(s.cfg.Federation.Status())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func cutPlus(vkey string) (string, string, bool) {
	for i := 0; i < len(vkey); i++ {
		if vkey[i] == '+' {
			return vkey[:i], vkey[i+1:], true
		}
	}
	return vkey, "", false
}

// PlacementView is a job running on a provider's capacity, as the provider
// sees it: where and since when, and nothing of the tenant's or of what
// the job is.
type PlacementView struct {
	Placement     string               `json:"placement"` // the attempt's ID
	Offer         string               `json:"offer"`
	Provider      identity.PrincipalID `json:"provider"`
	Region        string               `json:"region"`
	State         string               `json:"state"`
	ProvisionedAt time.Time            `json:"provisionedAt,omitzero"`
	StartedAt     time.Time            `json:"startedAt,omitzero"`
}

// placements lists the attempts under way on the caller's capacity (every
// provider's, for the operator).
func (s *Server) placements(w http.ResponseWriter, r *http.Request, c *Caller) {
	active, err := s.cfg.Jobs.Active(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := []PlacementView{}
	for _, j := range active {
		n := len(j.Attempts)
		if n == 0 || j.Attempts[n-1].Ended() {
			continue
		}
		a := j.Attempts[n-1]
		provider, err := identity.ParsePrincipalID(a.Provider)
		if err != nil || (c.Role != Operator && provider != c.Principal) {
			continue
		}
		state := cmp.Or(a.State, string(j.State))
		out = append(out, PlacementView{Placement: a.ID, Offer: a.Offer, Provider: provider, Region: a.Region, State: state,
			ProvisionedAt: a.ProvisionedAt, StartedAt: a.StartedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"placements": out})
}

// wireFederation is the federation's status as the API shows it. The
// status is read rarely, and its JSON is the wire form field for field
// (unknown fields are refused, so a field added to one and not the other
// fails the federation tests): the conversion goes through it.
func wireFederation(st federation.Status) (*v1.Federation, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	var out v1.Federation
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("api: the federation's status does not fit the API's: %w", err)
	}
	// An announcement's expiry is not part of what its broker signs, so
	// its JSON leaves it out; the API shows it.
	for i := range out.Brokers {
		out.Brokers[i].Expires = st.Brokers[i].Expires.UTC()
	}
	return &out, nil
}
