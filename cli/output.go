package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"keydesk/internal/sanitize"
)

// printJSON writes v as indented JSON: every command's --json goes through
// it, so that they all look alike, and every invisible or control character
// of directory text is escaped (sanitize.JSON).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(sanitize.JSONWriter(w))
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// emit prints v as JSON with --json, else as text: the one way every
// command honours --json.
func (g *globals) emit(asJSON bool, v any, text func()) error {
	if asJSON {
		return printJSON(g.stdout, v)
	}
	text()
	return nil
}

// table is a tabwriter with KeyDesk's column spacing; Flush prints it.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }
