package ui

import (
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Styles are built from a renderer, never global, so that every SSH session
// gets styles for its own terminal. Colours are ANSI 16 (they read on any
// palette), and nothing depends on colour alone: selection is reverse video
// and the focused pane's title is marked.
type Styles struct {
	r     *lipgloss.Renderer
	color bool // colours are on (no NO_COLOR)

	Header       lipgloss.Style
	HeaderDim    lipgloss.Style
	Footer       lipgloss.Style
	FooterKey    lipgloss.Style
	Message      lipgloss.Style
	Border       lipgloss.Style
	BorderFocus  lipgloss.Style
	Title        lipgloss.Style
	TitleFocus   lipgloss.Style
	Selected     lipgloss.Style
	SelectedDim  lipgloss.Style
	Dim          lipgloss.Style
	Label        lipgloss.Style
	OK           lipgloss.Style
	Warn         lipgloss.Style
	Err          lipgloss.Style
	Flag         lipgloss.Style
	Dialog       lipgloss.Style
	DialogBorder lipgloss.Style // a dialog's border drawn by hand (its footer)
	DialogTitle  lipgloss.Style
	FilterPrompt lipgloss.Style
	// QR draws a QR code's modules: with colour, light ones as white text
	// on black (exact colours, not the palette's: the code must read on
	// any theme); without, the terminal's own (see qrDrawsLight).
	QR lipgloss.Style
}

// NewStyles builds the styles for one renderer (one terminal). Without
// colour (NO_COLOR) the styles keep bold, underline and reverse video: the
// selected row stays visible (reverse video and bold), the focused pane's
// title is marked.
func NewStyles(r *lipgloss.Renderer, color bool) Styles {
	// NO_COLOR makes the renderer's profile ASCII, which draws no
	// attribute at all. When that is the only reason (the terminal itself
	// has colours), the profile is the 16 colours' instead: every colour
	// below is NoColor, so only the attributes are drawn. A terminal that
	// cannot show them (TERM=dumb, or not a terminal) stays ASCII.
	if out := r.Output(); !color && r.ColorProfile() == termenv.Ascii && out.EnvNoColor() && out.ColorProfile() != termenv.Ascii {
		r.SetColorProfile(termenv.ANSI)
	}
	var accent, dim, green, yellow, red, magenta lipgloss.TerminalColor = lipgloss.NoColor{}, lipgloss.NoColor{}, lipgloss.NoColor{}, lipgloss.NoColor{}, lipgloss.NoColor{}, lipgloss.NoColor{}
	if color {
		accent = lipgloss.AdaptiveColor{Light: "4", Dark: "12"}
		dim = lipgloss.AdaptiveColor{Light: "8", Dark: "7"}
		green = lipgloss.AdaptiveColor{Light: "2", Dark: "10"}
		yellow = lipgloss.AdaptiveColor{Light: "3", Dark: "11"}
		red = lipgloss.AdaptiveColor{Light: "1", Dark: "9"}
		magenta = lipgloss.AdaptiveColor{Light: "5", Dark: "13"}
	}
	s := Styles{r: r, color: color}
	s.Header = r.NewStyle().Bold(true).Reverse(true)
	s.HeaderDim = r.NewStyle().Reverse(true)
	s.Footer = r.NewStyle().Foreground(dim)
	s.FooterKey = r.NewStyle().Bold(true)
	s.Message = r.NewStyle().Bold(true)
	s.Border = r.NewStyle().Foreground(dim)
	s.BorderFocus = r.NewStyle().Foreground(accent).Bold(true)
	s.Title = r.NewStyle()
	s.TitleFocus = r.NewStyle().Foreground(accent).Bold(true)
	s.Selected = r.NewStyle().Reverse(true).Bold(true)
	s.SelectedDim = r.NewStyle().Underline(true)
	s.Dim = r.NewStyle().Foreground(dim)
	s.Label = r.NewStyle().Bold(true)
	s.OK = r.NewStyle().Foreground(green)
	s.Warn = r.NewStyle().Foreground(yellow).Bold(true)
	s.Err = r.NewStyle().Foreground(red).Bold(true)
	s.Flag = r.NewStyle().Foreground(magenta)
	s.Dialog = r.NewStyle().Border(lipgloss.DoubleBorder()).BorderForeground(accent).Padding(0, 1)
	s.DialogBorder = r.NewStyle().Foreground(accent)
	s.DialogTitle = r.NewStyle().Bold(true)
	s.FilterPrompt = r.NewStyle().Foreground(accent).Bold(true)
	s.QR = r.NewStyle()
	if color {
		s.QR = s.QR.Foreground(lipgloss.Color("#ffffff")).Background(lipgloss.Color("#000000"))
	}
	return s
}

// qrDrawsLight says which modules of a QR code are drawn as text: the
// light ones when the styles set white on black, or when the terminal's
// text is light on a dark background (the usual, and the assumption when
// the terminal does not say); the dark ones on a light background. Either
// way the code reads dark on light, as a scanner expects.
func (s Styles) qrDrawsLight() bool {
	coloured := s.color && s.r.ColorProfile() != termenv.Ascii
	return coloured || s.r.HasDarkBackground()
}
