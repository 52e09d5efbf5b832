package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/auditlog"
	"github.com/cinet/cinet/settlement/focus"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The audit log: checkpoints, inclusion and consistency proofs, exports",
		Long: `Every usage record a broker accepts, every ledger transaction, refusal and
clearing statement is appended to its audit log, a Merkle tree in the C2SP
tlog-tiles layout. A checkpoint is the tree's size and root hash signed with
the broker's key (C2SP tlog-checkpoint); an inclusion proof shows one entry is
in the tree a checkpoint signs (C2SP tlog-proof); a consistency proof shows a
later checkpoint extends an earlier one. 'verify' checks a proof with nothing
but the files and the broker's verifier key (spec/audit-log.md).`,
	}
	cmd.AddCommand(newCheckpointCmd(), newProveCmd(), newVerifyCmd(), newConsistencyCmd(), newExportCmd(), newReconcileCmd())
	return cmd
}

func newCheckpointCmd() *cobra.Command {
	var d brokerData
	var r remote
	var out string
	var o output
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign and print a checkpoint of the log as it stands",
		Long: `Checkpoint signs the log's current size and root hash and prints the signed
note; if the log has not grown since the last checkpoint, it prints that one.
The broker's verifier key, which anyone verifying needs, goes to standard
error. -o json or yaml prints the origin, size, root hash, verifier key and
the signed note instead.`,
		Example: `  cinet audit checkpoint --out today.checkpoint`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			structured, err := o.json()
			if err != nil {
				return err
			}
			if structured && out != "" {
				return usageError{errors.New("--out writes the signed note; it takes no -o")}
			}
			show := func(note []byte, vkey string) error {
				if !structured {
					return writeOut(cmd, out, note)
				}
				cp, err := auditlog.OpenCheckpoint(note, vkey)
				if err != nil {
					return err
				}
				return o.write(cmd.OutOrStdout(), map[string]any{"origin": cp.Origin, "size": cp.Size, "root": cp.Hash.String(), "verifierKey": vkey, "note": string(note)})
			}
			if on, err := r.on(); err != nil {
				return err
			} else if on {
				c, err := r.client()
				if err != nil {
					return err
				}
				note, err := c.Checkpoint(cmd.Context())
				if err != nil {
					return err
				}
				info, err := c.Info(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "verifier key: %s\n", info.VerifierKey)
				return show(note, info.VerifierKey)
			}
			s, store, err := d.openSettler(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			cp, err := s.Checkpoint(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "log %s: %d entries\nverifier key: %s\n", cp.Origin, cp.Size, s.VerifierKey())
			return show(cp.Note, s.VerifierKey())
		},
	}
	d.register(cmd)
	r.register(cmd)
	o.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "write the checkpoint here (default standard output)")
	return cmd
}

func newProveCmd() *cobra.Command {
	var d brokerData
	var r remote
	var record, dir string
	var index int64
	var o output
	cmd := &cobra.Command{
		Use:   "prove --record ID",
		Short: "Write a record's log entry, a checkpoint and the inclusion proof between them",
		Long: `Prove finds a usage record's entry in the audit log and writes three files to
--out (default the current directory), named after the record:

  NAME.entry        the log entry, byte for byte
  NAME.checkpoint   the signed checkpoint the proof leads to
  NAME.tlog-proof   the C2SP tlog-proof: index, proof hashes and checkpoint

A checkpoint is issued first if the record came after the last one. Give the
files and the verifier key to anyone: 'cinet audit verify' or any C2SP
verifier checks them without access to the broker. --index proves any entry
by its position instead.`,
		Example: `  cinet audit prove --record sha256:6e21d537... --out proofs/`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := o.json(); err != nil {
				return err
			}
			byIndex := cmd.Flags().Changed("index")
			if (record == "") == !byIndex {
				return usageError{errors.New("give --record ID or --index N")}
			}
			if on, err := r.on(); err != nil {
				return err
			} else if on {
				if byIndex {
					return usageError{errors.New("a broker proves records by ID: give --record")}
				}
				c, err := r.client()
				if err != nil {
					return err
				}
				p, err := c.Proof(cmd.Context(), record)
				if err != nil {
					return err
				}
				return writeProofFiles(cmd, &o, dir, recordFileName(record), p.Entry, []byte(p.Checkpoint), []byte(p.Proof), p.VerifierKey, p.Index)
			}
			s, store, err := d.openSettler(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			var p *settlement.Proof
			name := fmt.Sprintf("entry-%d", index)
			if byIndex {
				p, err = s.ProveIndex(cmd.Context(), "", index)
			} else {
				p, err = s.Prove(cmd.Context(), settlement.RecordID(record))
				name = recordFileName(record)
			}
			if errors.Is(err, settlement.ErrNotFound) {
				return fmt.Errorf("no accepted record %s in this broker's books", record)
			}
			if err != nil {
				return err
			}
			return writeProofFiles(cmd, &o, dir, name, p.Entry, p.Checkpoint.Note, p.Receipt, s.VerifierKey(), p.Index)
		},
	}
	d.register(cmd)
	r.register(cmd)
	o.register(cmd)
	cmd.Flags().StringVar(&record, "record", "", "the usage record's ID (sha256:...)")
	cmd.Flags().Int64Var(&index, "index", 0, "prove the entry at this log index instead")
	cmd.Flags().StringVar(&dir, "out", "", "directory for the files (default the current directory)")
	return cmd
}

func newVerifyCmd() *cobra.Command {
	var checkpoint, key, proofFile, entry string
	var o output
	cmd := &cobra.Command{
		Use:   "verify --vkey VKEY --checkpoint FILE --proof FILE --entry FILE",
		Short: "Verify an inclusion proof offline",
		Long: `Verify checks, with nothing but its inputs, that the entry is in the log the
verifier key signs: the checkpoint's signature, that the proof's checkpoint is
the one given, and that the proof hashes lead from the entry to the
checkpoint's root. It prints the entry's index and the log's size.`,
		Example: `  cinet audit verify --vkey 'cinet.broker/abc...+1a2b3c4d+AQ...' --checkpoint r.checkpoint --proof r.tlog-proof --entry r.entry`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			structured, err := o.json()
			if err != nil {
				return err
			}
			if checkpoint == "" || key == "" || proofFile == "" || entry == "" {
				return usageError{errors.New("--vkey, --checkpoint, --proof and --entry are all required")}
			}
			var data [3][]byte
			for i, f := range []string{checkpoint, proofFile, entry} {
				var err error
				if data[i], err = readInput(cmd, f); err != nil {
					return err
				}
			}
			cp, index, err := auditlog.VerifyReceipt(data[1], data[2], key, data[0])
			if err != nil {
				return err
			}
			if structured {
				return o.write(cmd.OutOrStdout(), map[string]any{"verified": true, "index": index, "origin": cp.Origin, "size": cp.Size, "root": cp.Hash.String()})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "verified: entry %d is in %s at size %d\n", index, cp.Origin, cp.Size)
			return nil
		},
	}
	cmd.Flags().StringVar(&checkpoint, "checkpoint", "", "the signed checkpoint")
	cmd.Flags().StringVar(&key, "vkey", "", "the log's verifier key (C2SP vkey; cinet id --key BROKER_KEY prints it)")
	cmd.Flags().StringVar(&proofFile, "proof", "", "the .tlog-proof")
	cmd.Flags().StringVar(&entry, "entry", "", "the log entry")
	o.register(cmd)
	return cmd
}

func newConsistencyCmd() *cobra.Command {
	var d brokerData
	var o output
	cmd := &cobra.Command{
		Use:   "consistency OLD NEW",
		Short: "Prove and check that the log at NEW extends the log at OLD",
		Long: `Consistency proves that the log as one checkpoint signs it is a prefix of the
log as a later one signs it — nothing was changed or removed in between — and
checks the proof. OLD and NEW are checkpoint files (which must verify under
this broker's key) or log sizes; the proof hashes are printed in base64.`,
		Example: `  cinet audit consistency monday.checkpoint tuesday.checkpoint
  cinet audit consistency 1000 2000`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			structured, err := o.json()
			if err != nil {
				return err
			}
			s, store, err := d.openSettler(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			var cps [2]*auditlog.Checkpoint
			for i, a := range args {
				if cps[i], err = checkpointArg(cmd, s, a); err != nil {
					return err
				}
			}
			if cps[0].Size > cps[1].Size {
				return usageError{fmt.Errorf("OLD has %d entries, more than NEW's %d", cps[0].Size, cps[1].Size)}
			}
			p, err := s.ProveConsistency(cmd.Context(), cps[0].Size, cps[1].Size)
			if err != nil {
				return err
			}
			if err := auditlog.VerifyConsistency(cps[0], cps[1], p); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if structured {
				hashes := []string{}
				for _, h := range p {
					hashes = append(hashes, base64.StdEncoding.EncodeToString(h[:]))
				}
				return o.write(w, map[string]any{"consistent": true, "oldSize": cps[0].Size, "newSize": cps[1].Size, "proof": hashes})
			}
			fmt.Fprintf(w, "consistent: the log at %d entries is a prefix of the log at %d\n", cps[0].Size, cps[1].Size)
			for _, h := range p {
				fmt.Fprintln(w, base64.StdEncoding.EncodeToString(h[:]))
			}
			return nil
		},
	}
	d.register(cmd)
	o.register(cmd)
	return cmd
}

// checkpointArg reads a checkpoint file, or signs a checkpoint over the
// first n entries when the argument is a size.
func checkpointArg(cmd *cobra.Command, s *settlement.Settler, arg string) (*auditlog.Checkpoint, error) {
	if n, err := strconv.ParseInt(arg, 10, 64); err == nil {
		return s.CheckpointAt(cmd.Context(), n)
	}
	note, err := readInput(cmd, arg)
	if err != nil {
		return nil, err
	}
	cp, err := auditlog.OpenCheckpoint(note, s.VerifierKey())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	return cp, nil
}

func newExportCmd() *cobra.Command {
	var d brokerData
	var r remote
	var format, account, period, out string
	cmd := &cobra.Command{
		Use:   "export --format focus --period PERIOD [--account ACCOUNT]",
		Short: "Export settled usage as a FOCUS 1.2 CSV",
		Long: `Export writes the charges behind an account's movements — each rated item and
each broker fee — for the usage records whose period ends in PERIOD, as a
FOCUS 1.2 cost and usage CSV: the mandatory columns, ResourceId, SkuId,
ConsumedQuantity, ConsumedUnit, RegionId and the like, and x_ columns for the
job, the compute identifier, accelerator seconds, tokens and the record's log
index. Without --account it exports what this broker bills: its tenants, and
the home brokers of jobs it ran. spec/usage-record.md maps every column.`,
		Example: `  cinet audit export --format focus --period 2026-11 --account tenant/did:key:z6Mk... --out november.csv`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "focus" {
				return usageError{fmt.Errorf("--format %q: the one format is focus", format)}
			}
			if period == "" {
				return usageError{errors.New("--period is required")}
			}
			from, to, err := parsePeriod(period)
			if err != nil {
				return err
			}
			var acct settlement.Account
			if account != "" {
				if acct, err = settlement.ParseAccount(account); err != nil {
					return usageError{err}
				}
			}
			if on, err := r.on(); err != nil {
				return err
			} else if on {
				c, err := r.client()
				if err != nil {
					return err
				}
				csv, err := c.Export(cmd.Context(), account, period)
				if err != nil {
					return err
				}
				return writeOut(cmd, out, csv)
			}
			s, store, err := d.openSettler(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			st, err := s.Statement(cmd.Context(), acct, from, to)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := focus.Write(&buf, &focus.Export{Broker: s.ID(), Account: acct, From: from, To: to, Transactions: st.Transactions}); err != nil {
				return err
			}
			return writeOut(cmd, out, buf.Bytes())
		},
	}
	d.register(cmd)
	r.register(cmd)
	cmd.Flags().StringVar(&format, "format", "focus", "export format: focus")
	cmd.Flags().StringVar(&account, "account", "", "the account (default: what this broker bills)")
	cmd.Flags().StringVar(&period, "period", "", "a month (2026-11), a day (2026-11-30) or START/END in RFC 3339")
	cmd.Flags().StringVar(&out, "out", "", "write the CSV here (default standard output)")
	return cmd
}

// recordFileName names a record's proof files.
func recordFileName(record string) string {
	name := "record-" + strings.TrimPrefix(record, "sha256:")
	if len(name) > 7+16 {
		name = name[:7+16]
	}
	return name
}

// writeProofFiles writes NAME.entry, NAME.checkpoint and NAME.tlog-proof to
// dir and says how to verify them.
func writeProofFiles(cmd *cobra.Command, o *output, dir, name string, entry, checkpoint, proof []byte, vkey string, index int64) error {
	structured, err := o.json()
	if err != nil {
		return err
	}
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{".entry": entry, ".checkpoint": checkpoint, ".tlog-proof": proof}
	var paths []string
	for _, ext := range []string{".entry", ".checkpoint", ".tlog-proof"} {
		path := filepath.Join(dir, name+ext)
		if err := os.WriteFile(path, files[ext], 0o644); err != nil {
			return err
		}
		paths = append(paths, path)
	}
	base := filepath.Join(dir, name)
	verify := fmt.Sprintf("%s audit verify --vkey %s --checkpoint %s.checkpoint --proof %s.tlog-proof --entry %s.entry", selfCommand(), vkey, base, base, base)
	if structured {
		return o.write(cmd.OutOrStdout(), map[string]any{"index": index, "entry": paths[0], "checkpoint": paths[1], "proof": paths[2], "verifierKey": vkey, "verify": verify})
	}
	for _, p := range paths {
		fmt.Fprintln(cmd.OutOrStdout(), p)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "entry %d\nverify with:\n  %s\n", index, verify)
	return nil
}
