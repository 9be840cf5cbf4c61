package main

import (
	"fmt"

	"github.com/p2pd/p2pd/internal/buildinfo"
	"github.com/spf13/cobra"
)

func versionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Short:       "Print p2pctl's version, the commit it was built from and the Go version",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{offlineAnnotation: "true"},
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(a.out, buildinfo.Text("p2pctl"))
			return err
		},
	}
}
