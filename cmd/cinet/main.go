// Command cinet is the compute-internet federation broker and its client:
// keys and identities, the description language, and (as the broker
// grows) jobs, providers, the ledger and the audit log.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"
)

// exitError carries an exit status without printing anything further:
// the command has already reported what went wrong.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit status: 0 on
// success, 1 when the command failed, 2 when it was used wrongly.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	// What the CLI prints carries text from jobs and brokers: nothing of
	// it may command the terminal.
	out, errOut := &termSafe{w: stdout}, &termSafe{w: stderr}
	defer out.Flush()
	defer errOut.Flush()
	stdout, stderr = out, errOut
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case isUsageError(err):
		fmt.Fprintf(stderr, "cinet: %v\nRun 'cinet --help' for usage.\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "cinet: %v\n", err)
		return 1
	}
}

type usageError struct{ error }

func isUsageError(err error) bool {
	var ue usageError
	// cobra reports an unknown command or flag as a plain error.
	return errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag")
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "cinet",
		Short: "cinet is a compute-internet federation broker",
		Long: `cinet brokers compute across providers and regions: tenants describe jobs,
providers advertise offers, brokers route jobs to the best offer anywhere in
the federation and settle the usage in books regulators can verify.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newKeygenCmd(), newIDCmd(), newDescriptorCmd(), newJobCmd(), newLedgerCmd(), newAuditCmd(), newProviderCmd(), newBrokerCmd(), newFederationCmd(), newConsoleCmd(), newTokenCmd(), newDevCmd(), newShimCmd(), newTerraformAgentCmd(), newSlurmNodeCmd())
	return root
}

// output is the -o flag shared by commands that print results: a table
// for people (or YAML, where that is the natural form), JSON or YAML for
// programs. The JSON and YAML carry the same value.
type output struct{ format string }

func (o *output) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "table", "output format: table, json, yaml, or template=TEMPLATE (a Go template over the JSON, e.g. template={{.id}})")
}

// json checks the format and reports whether it is a structured one (json
// or yaml), which o.write prints.
func (o *output) json() (bool, error) {
	switch o.format {
	case "table", "":
		return false, nil
	case "json", "yaml":
		return true, nil
	}
	if t, ok := strings.CutPrefix(o.format, "template="); ok {
		if _, err := template.New("o").Option("missingkey=error").Parse(t); err != nil {
			return false, usageError{fmt.Errorf("-o template: %w", err)}
		}
		return true, nil
	}
	return false, usageError{fmt.Errorf("unknown output format %q (want table, json, yaml or template=TEMPLATE)", o.format)}
}

// write prints v as JSON, as YAML with -o yaml, or through the template
// of -o template=..., which sees v as its JSON reads (fields by their JSON
// names).
func (o *output) write(w io.Writer, v any) error {
	if o.format != "yaml" && !strings.HasPrefix(o.format, "template=") {
		return writeJSON(w, v)
	}
	var b bytes.Buffer
	if err := writeJSON(&b, v); err != nil {
		return err
	}
	if t, ok := strings.CutPrefix(o.format, "template="); ok {
		tmpl, err := template.New("o").Option("missingkey=error").Parse(t)
		if err != nil {
			return usageError{fmt.Errorf("-o template: %w", err)}
		}
		var data any
		dec := json.NewDecoder(&b)
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			return err
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, data); err != nil {
			return fmt.Errorf("-o template: %w", err)
		}
		if out.Len() == 0 || out.Bytes()[out.Len()-1] != '\n' {
			out.WriteByte('\n')
		}
		_, err = w.Write(out.Bytes())
		return err
	}
	y, err := yaml.JSONToYAML(b.Bytes())
	if err != nil {
		return err
	}
	_, err = w.Write(y)
	return err
}

// readInput reads a named file, or standard input for "-".
func readInput(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<20))
	}
	return os.ReadFile(name)
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
