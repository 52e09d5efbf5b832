// Command cinet is the compute-internet federation broker and its client:
// keys and identities, the description language, and (as the broker
// grows) jobs, providers, the ledger and the audit log.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/goccy/go-yaml"
	"io"
	"os"
	"strings"

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
	root.AddCommand(newKeygenCmd(), newIDCmd(), newDescriptorCmd(), newJobCmd(), newLedgerCmd(), newAuditCmd(), newProviderCmd(), newBrokerCmd(), newFederationCmd(), newDevCmd(), newShimCmd())
	return root
}

// output is the -o flag shared by commands that print results: a table
// for people (or YAML, where that is the natural form), JSON or YAML for
// programs. The JSON and YAML carry the same value.
type output struct{ format string }

func (o *output) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "table", "output format: table, json or yaml")
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
	return false, usageError{fmt.Errorf("unknown output format %q (want table, json or yaml)", o.format)}
}

// write prints v as JSON, or as YAML with -o yaml.
func (o *output) write(w io.Writer, v any) error {
	if o.format != "yaml" {
		return writeJSON(w, v)
	}
	var b bytes.Buffer
	if err := writeJSON(&b, v); err != nil {
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
