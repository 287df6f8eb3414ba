package mailer

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"

	"keydesk/internal/sanitize"
)

//go:embed templates
var builtin embed.FS

// Invitation is what an invitation's templates may use.
type Invitation struct {
	Name         string // the employee's name (or email)
	Email        string
	Code         string // the enrollment code, in groups of 4
	Expires      string // when the code expires, as a date and time
	Organisation string
	Where        string // where to enroll, e.g. "to the KeyDesk kiosk"
}

// Templates render the invitation: subject, text and HTML.
type Templates struct {
	subject, text *texttemplate.Template
	html          *htmltemplate.Template
}

// The files of a template folder.
const (
	SubjectFile = "invitation.subject"
	TextFile    = "invitation.txt"
	HTMLFile    = "invitation.html"
)

// LoadTemplates reads the built-in templates and replaces each one that
// dir ("" = none) holds a file for.
func LoadTemplates(dir string) (*Templates, error) {
	read := func(name string) (string, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			switch {
			case err == nil:
				return string(b), nil
			case !errors.Is(err, fs.ErrNotExist):
				return "", fmt.Errorf("invitations.templates_dir: %w", err)
			}
		}
		b, err := builtin.ReadFile("templates/" + name)
		return string(b), err
	}
	var t Templates
	for _, f := range []struct {
		name  string
		parse func(string) error
	}{
		{SubjectFile, func(s string) (err error) {
			t.subject, err = texttemplate.New(SubjectFile).Option("missingkey=error").Parse(s)
			return
		}},
		{TextFile, func(s string) (err error) {
			t.text, err = texttemplate.New(TextFile).Option("missingkey=error").Parse(s)
			return
		}},
		{HTMLFile, func(s string) (err error) {
			t.html, err = htmltemplate.New(HTMLFile).Option("missingkey=error").Parse(s)
			return
		}},
	} {
		src, err := read(f.name)
		if err != nil {
			return nil, err
		}
		if err := f.parse(src); err != nil {
			return nil, fmt.Errorf("the %s template: %w", f.name, err)
		}
	}
	// A template that uses a field that does not exist, or leaves the code
	// out, fails now, not at the first invitation.
	const probe = "PROBE-CODE-2345"
	m, err := t.Invitation("", Invitation{Code: probe})
	if err != nil {
		return nil, err
	}
	for _, part := range []struct{ file, text string }{{TextFile, m.Text}, {HTMLFile, m.HTML}} {
		if !strings.Contains(part.text, probe) {
			return nil, fmt.Errorf("the %s template never shows the enrollment code: put {{.Code}} in it", part.file)
		}
	}
	return &t, nil
}

// Invitation renders the invitation to data.Email. Directory text is
// hostile: every field is cleaned of control, bidi and invisible
// characters first (and HTML-escaped in the HTML part).
func (t *Templates) Invitation(messageID string, data Invitation) (Message, error) {
	for _, p := range []*string{&data.Name, &data.Email, &data.Code, &data.Expires, &data.Organisation, &data.Where} {
		*p = sanitize.Text(*p)
	}
	var subj, text, html bytes.Buffer
	if err := t.subject.Execute(&subj, data); err != nil {
		return Message{}, fmt.Errorf("the %s template: %w", SubjectFile, err)
	}
	if err := t.text.Execute(&text, data); err != nil {
		return Message{}, fmt.Errorf("the %s template: %w", TextFile, err)
	}
	if err := t.html.Execute(&html, data); err != nil {
		return Message{}, fmt.Errorf("the %s template: %w", HTMLFile, err)
	}
	// A subject is one line.
	subject := strings.Join(strings.Fields(subj.String()), " ")
	return Message{To: data.Email, Subject: subject, Text: text.String(), HTML: html.String(), MessageID: messageID}, nil
}
