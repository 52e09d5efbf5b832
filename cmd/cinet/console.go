package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cinet/cinet/broker/client"
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
			return answer(cmd, &r, &o, (*client.Client).ConsoleCode, func(w io.Writer, code *client.ConsoleCode) error {
				_, err := fmt.Fprintf(w, "%s\n(open it within %s; it works once)\n", code.URL, time.Until(code.Expires).Round(time.Second))
				return err
			})
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}
