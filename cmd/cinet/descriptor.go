package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cinet/cinet/descriptor"
)

func newDescriptorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "descriptor",
		Short: "Validate, format, hash and convert job and offer documents",
		Long: `Work with documents of the description language v1 (kinds Job and Offer,
YAML or JSON): validate them, print their canonical form and digest, and
convert SkyPilot tasks and Slurm batch scripts into jobs.`,
	}
	cmd.AddCommand(newValidateCmd(), newFmtCmd(), newHashCmd(), newConvertCmd(), newAcceleratorsCmd())
	return cmd
}

// fileResult is one file's validation outcome, for -o json.
type fileResult struct {
	File   string        `json:"file"`
	Valid  bool          `json:"valid"`
	Kind   string        `json:"kind,omitempty"`
	Name   string        `json:"name,omitempty"`
	Digest string        `json:"digest,omitempty"`
	Errors []errorResult `json:"errors,omitempty"`
}

type errorResult struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func newValidateCmd() *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check documents against the v1 schema and rules",
		Long: `Check each document (a file, or - for standard input) against the v1
JSON Schema and the rules of spec/descriptor-v1.md. Problems are printed one
a line as FILE:LINE:COL: PATH: MESSAGE. The exit status is 0 when every
document is valid and 1 otherwise.`,
		Example: `  cinet descriptor validate examples/jobs/*.yaml examples/offers/*.yaml
  cinet descriptor validate -o json job.yaml`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			var results []fileResult
			failed := false
			for _, file := range args {
				r := validateFile(cmd, file)
				failed = failed || !r.Valid
				results = append(results, r)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := o.write(w, results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					if r.Valid {
						fmt.Fprintf(w, "%s: valid %s %q %s\n", r.File, r.Kind, r.Name, r.Digest)
						continue
					}
					for _, e := range r.Errors {
						fmt.Fprintln(w, formatErrorResult(r.File, e))
					}
				}
			}
			if failed {
				return exitError{1}
			}
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

func formatErrorResult(file string, e errorResult) string {
	de := descriptor.Error{File: file, Line: e.Line, Col: e.Column, Path: e.Path, Msg: e.Message}
	return de.Error()
}

func validateFile(cmd *cobra.Command, file string) fileResult {
	r := fileResult{File: file}
	data, err := readInput(cmd, file)
	if err != nil {
		r.Errors = []errorResult{{Message: err.Error()}}
		return r
	}
	doc, err := descriptor.Parse(file, data)
	if err != nil {
		r.Errors = errorResults(err)
		return r
	}
	r.Valid, r.Kind, r.Digest = true, doc.Kind, doc.Digest
	if doc.Job != nil {
		r.Name = doc.Job.Metadata.Name
	} else {
		r.Name = doc.Offer.Metadata.Name
	}
	return r
}

func errorResults(err error) []errorResult {
	var list descriptor.ErrorList
	if !errors.As(err, &list) {
		return []errorResult{{Message: err.Error()}}
	}
	out := make([]errorResult, len(list))
	for i, e := range list {
		out[i] = errorResult{Line: e.Line, Column: e.Col, Path: e.Path, Message: e.Msg}
	}
	return out
}

// parseOrReport parses one document, printing located errors and returning
// exit status 1 when it is invalid.
func parseOrReport(cmd *cobra.Command, file string) (*descriptor.Document, error) {
	data, err := readInput(cmd, file)
	if err != nil {
		return nil, err
	}
	doc, err := descriptor.Parse(file, data)
	if err != nil {
		var list descriptor.ErrorList
		if errors.As(err, &list) {
			fmt.Fprintln(cmd.ErrOrStderr(), list.Error())
			return nil, exitError{1}
		}
		return nil, err
	}
	return doc, nil
}

func newFmtCmd() *cobra.Command {
	var write bool
	var o output
	cmd := &cobra.Command{
		Use:   "fmt FILE",
		Short: "Print a document in canonical YAML",
		Long: `Print the document in canonical YAML: fields in the order the
specification lists them, map keys sorted, no comments. With -o json, print
the canonical JSON (RFC 8785) whose SHA-256 is the document's digest.
Formatting never changes the digest.`,
		Example: `  cinet descriptor fmt job.yaml
  cinet descriptor fmt -w job.yaml
  cinet descriptor fmt -o json job.yaml`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := o.json(); err != nil {
				return err
			}
			asJSON := o.format == "json" // -o yaml is the canonical YAML, as without -o
			if write && (asJSON || args[0] == "-") {
				return usageError{fmt.Errorf("-w rewrites a YAML file in place; it takes neither -o json nor -")}
			}
			doc, err := parseOrReport(cmd, args[0])
			if err != nil {
				return err
			}
			if strings.HasPrefix(o.format, "template=") && !write {
				return o.write(cmd.OutOrStdout(), json.RawMessage(doc.Canonical))
			}
			var out []byte
			if asJSON {
				out = append(doc.Canonical, '\n')
			} else if out, err = doc.FormatYAML(); err != nil {
				return err
			}
			if write {
				return writeFileAtomic(args[0], out)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().BoolVarP(&write, "write", "w", false, "rewrite the file in place")
	o.register(cmd)
	return cmd
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new file, never half of one.
func writeFileAtomic(path string, data []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".cinet-tmp"
	if err := os.WriteFile(tmp, data, st.Mode().Perm()); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func newHashCmd() *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:   "hash FILE",
		Short: "Print a document's digest",
		Long: `Print sha256:<hex>, the SHA-256 of the document's canonical form (RFC 8785).
Every broker computes the same digest for the same document, whether it is
written in YAML or JSON and whatever the order of its keys.`,
		Example: `  cinet descriptor hash examples/jobs/train-llama.yaml`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			structured, err := o.json()
			if err != nil {
				return err
			}
			doc, err := parseOrReport(cmd, args[0])
			if err != nil {
				return err
			}
			if structured {
				return o.write(cmd.OutOrStdout(), map[string]string{"file": args[0], "kind": doc.Kind, "digest": doc.Digest})
			}
			fmt.Fprintln(cmd.OutOrStdout(), doc.Digest)
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

func newConvertCmd() *cobra.Command {
	var from string
	var o output
	cmd := &cobra.Command{
		Use:   "convert --from skypilot|slurm FILE",
		Short: "Convert a SkyPilot task or Slurm batch script into a v1 job",
		Long: `Convert a SkyPilot task YAML or a Slurm batch script (#SBATCH directives)
into a v1 Job, printed as canonical YAML (or JSON with -o json). Every input
field that has a meaning in v1 is mapped; each one that does not is named in
a warning on standard error.

SkyPilot's relative paths (workdir, file_mounts) are taken from the current
directory, as sky launch takes them, and "~" from your home directory; the
job names them as file:// URIs.`,
		Example: `  cinet descriptor convert --from skypilot task.yaml > job.yaml
  cinet descriptor convert --from slurm train.sbatch -o json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := o.json(); err != nil {
				return err
			}
			var conv func(string, []byte) (*descriptor.Import, error)
			switch from {
			case "skypilot":
				var opts descriptor.ImportOptions
				opts.Dir, _ = os.Getwd()
				opts.Home, _ = os.UserHomeDir()
				conv = func(file string, data []byte) (*descriptor.Import, error) {
					return descriptor.ImportSkyPilotWith(file, data, opts)
				}
			case "slurm":
				conv = descriptor.ImportSlurm
			case "":
				return usageError{fmt.Errorf("--from is required: skypilot or slurm")}
			default:
				return usageError{fmt.Errorf("unknown --from %q: want skypilot or slurm", from)}
			}
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			asJSON := o.format == "json" // -o yaml is the canonical YAML, as without -o
			imp, err := conv(args[0], data)
			if err != nil {
				var list descriptor.ErrorList
				if errors.As(err, &list) {
					fmt.Fprintln(cmd.ErrOrStderr(), list.Error())
					return exitError{1}
				}
				return err
			}
			for _, w := range imp.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			if strings.HasPrefix(o.format, "template=") {
				return o.write(cmd.OutOrStdout(), json.RawMessage(imp.Document.Canonical))
			}
			out := append(imp.Document.Canonical, '\n')
			if !asJSON {
				if out, err = imp.Document.FormatYAML(); err != nil {
					return err
				}
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "input format: skypilot or slurm")
	o.register(cmd)
	return cmd
}

func newAcceleratorsCmd() *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:   "accelerators",
		Short: "List the accelerator models of the compute-class vocabulary",
		Long: `List the accelerator models jobs and offers may name, with their memory,
frameworks (minimum versions), compute capability and dense per-device
throughput in TFLOPS (TOPS for int8); 0 where the maker publishes no figure.`,
		Example: `  cinet descriptor accelerators
  cinet descriptor accelerators -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			type row struct {
				Name              string            `json:"name"`
				Kind              string            `json:"kind"`
				Vendor            string            `json:"vendor"`
				Memory            string            `json:"memory"`
				ComputeCapability string            `json:"computeCapability,omitempty"`
				Frameworks        map[string]string `json:"frameworks"`
				TFLOPS            descriptor.TFLOPS `json:"tflops"`
				frameworkList     []string
			}
			var rows []row
			for _, a := range descriptor.Accelerators() {
				r := row{Name: a.Name, Kind: a.Kind, Vendor: a.Vendor, Memory: a.Memory.String(),
					ComputeCapability: a.ComputeCapability.String(), Frameworks: map[string]string{}, TFLOPS: a.TFLOPS}
				for _, f := range a.Frameworks {
					r.Frameworks[f.Name] = ">=" + f.Min.String()
					r.frameworkList = append(r.frameworkList, f.Name+">="+f.Min.String())
				}
				rows = append(rows, r)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return o.write(w, rows)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MODEL\tKIND\tVENDOR\tMEMORY\tCC\tFRAMEWORKS\tFP64\tFP32\tFP16\tINT8")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%g\t%g\t%g\t%g\n", r.Name, r.Kind, r.Vendor, r.Memory,
					dash(r.ComputeCapability), strings.Join(r.frameworkList, ","), r.TFLOPS.FP64, r.TFLOPS.FP32, r.TFLOPS.FP16, r.TFLOPS.INT8)
			}
			return tw.Flush()
		},
	}
	o.register(cmd)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
