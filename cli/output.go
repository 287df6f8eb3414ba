package cli

import (
	"bufio"
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

// streamJSON writes a JSON array whose elements each puts, one at a time
// (indented as printJSON does): a listing of any length in constant memory.
func streamJSON(w io.Writer, each func(put func(any) error) error) error {
	bw := bufio.NewWriterSize(sanitize.JSONWriter(w), 64<<10)
	first := true
	bw.WriteString("[")
	err := each(func(v any) error {
		b, err := json.MarshalIndent(v, "  ", "  ")
		if err != nil {
			return fmt.Errorf("write JSON: %w", err)
		}
		if !first {
			bw.WriteString(",")
		}
		first = false
		bw.WriteString("\n  ")
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		bw.Flush()
		return err
	}
	if !first {
		bw.WriteString("\n")
	}
	bw.WriteString("]\n")
	return bw.Flush()
}

// table is a tabwriter with KeyDesk's column spacing; Flush prints it.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }
