package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newConsoleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "console",
		Short: "The broker's web console",
		Long: `Every broker serves a web console at /ui/. A browser signs in with a
one-time code that 'cinet console login' asks for with your key, so that
the key itself never enters the browser (spec/api/README.md).`,
	}
	cmd.AddCommand(newConsoleLoginCmd())
	return cmd
}

func newConsoleLoginCmd() *cobra.Command {
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Print a link that signs a browser in to the console, once, within two minutes",
		Example: `  cinet console login
  cinet console login -o template='{{.url}}'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			code, err := c.ConsoleCode(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return o.write(cmd.OutOrStdout(), code)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n(open it within %s; it works once)\n", code.URL, time.Until(code.Expires).Round(time.Second))
			return nil
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}
