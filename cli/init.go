package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"keydesk/config"
)

func newInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Write a commented sample configuration to fill in (never over an existing one)",
		Long: `Init writes a commented configuration for one domain where KeyDesk looks for
it (--config, $KEYDESK_CONFIG, or ` + config.DefaultPath() + `), mode 0600.
Fill in the domain, then check it with keydesk doctor and import with keydesk
sync. An existing file is never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _ := g.resolvedConfigPath()
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("%s exists already: nothing was written (edit it, or name another file with --config)", path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return fmt.Errorf("create the configuration's folder: %w", err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("write the configuration: %w", err)
			}
			if _, err := f.WriteString(config.Sample); err != nil {
				f.Close()
				return fmt.Errorf("write the configuration: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("write the configuration: %w", err)
			}
			fmt.Fprintf(g.stdout, "wrote %s: fill in your domain, then run keydesk doctor and keydesk sync\n", path)
			return nil
		},
	}
}
