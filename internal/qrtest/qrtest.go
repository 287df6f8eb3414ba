// Package qrtest is test support only: it reads back a QR code drawn as
// text with half-block characters (enroll.HalfBlocks, on the console's
// screen or the command line's output), as a phone's camera would, with a
// QR decoder (makiuchi-d/gozxing).
package qrtest

import (
	"image"
	"strings"

	"github.com/charmbracelet/x/ansi"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// Image draws a screen (ANSI escapes are dropped) as a camera sees it:
// each character cell is two modules high and one wide, 4x4 pixels each;
// a drawn half block is light when lightText (light text on a dark
// background), dark otherwise.
func Image(screen string, lightText bool) *image.Gray { return imageAt(screen, lightText, 4) }

func imageAt(screen string, lightText bool, px int) *image.Gray {
	lines := strings.Split(ansi.Strip(screen), "\n")
	w := 0
	for _, l := range lines {
		w = max(w, ansi.StringWidth(l))
	}
	fg, bg := uint8(0), uint8(255)
	if lightText {
		fg, bg = 255, 0
	}
	img := image.NewGray(image.Rect(0, 0, w*px, 2*len(lines)*px))
	paint := func(x, y int, v uint8) {
		for dy := range px {
			for dx := range px {
				img.Pix[(y*px+dy)*img.Stride+x*px+dx] = v
			}
		}
	}
	for y, l := range lines {
		x := 0
		for _, r := range l {
			top, bottom := bg, bg
			if r == '█' || r == '▀' {
				top = fg
			}
			if r == '█' || r == '▄' {
				bottom = fg
			}
			cw := ansi.StringWidth(string(r))
			for i := range cw {
				paint(x+i, 2*y, top)
				paint(x+i, 2*y+1, bottom)
			}
			x += cw
		}
		for ; x < w; x++ {
			paint(x, 2*y, bg)
			paint(x, 2*y+1, bg)
		}
	}
	return img
}

// Decode reads the QR code on a screen (see Image). As a phone moves to
// find the code, it tries a few sizes of module, and then the code's own
// area alone (the decoder's detector misjudges the size of a few patterns).
func Decode(screen string, lightText bool) (string, error) {
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	var first error
	try := func(img image.Image, hints map[gozxing.DecodeHintType]any) (string, bool) {
		bmp, err := gozxing.NewBinaryBitmapFromImage(img)
		if err == nil {
			var res *gozxing.Result
			if res, err = qrcode.NewQRCodeReader().Decode(bmp, hints); err == nil {
				return res.GetText(), true
			}
		}
		if first == nil {
			first = err
		}
		return "", false
	}
	for _, px := range []int{4, 3, 5} {
		if text, ok := try(imageAt(screen, lightText, px), hints); ok {
			return text, nil
		}
	}
	for _, px := range []int{6, 8} {
		if crop := codeArea(screen, lightText, px); crop != nil {
			if text, ok := try(crop, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}); ok {
				return text, nil
			}
		}
	}
	return "", first
}

// codeArea is the screen's half-block characters alone (nothing else
// drawn), with a light margin: the QR code as a phone framed on it.
func codeArea(screen string, lightText bool, px int) image.Image {
	lines := strings.Split(ansi.Strip(screen), "\n")
	top, bottom, left, right := -1, -1, -1, -1
	for y, l := range lines {
		x := 0
		for _, r := range l {
			if r == '█' || r == '▀' || r == '▄' {
				if top < 0 {
					top = y
				}
				bottom = y
				if left < 0 || x < left {
					left = x
				}
				right = max(right, x)
			}
			x += ansi.StringWidth(string(r))
		}
	}
	if top < 0 {
		return nil
	}
	var b strings.Builder
	for _, l := range lines[top : bottom+1] {
		row := []rune{}
		x := 0
		for _, r := range l {
			if x >= left && x <= right {
				if r != '█' && r != '▀' && r != '▄' {
					r = ' '
				}
				row = append(row, r)
			}
			x += ansi.StringWidth(string(r))
		}
		b.WriteString(string(row) + "\n")
	}
	img := imageAt(strings.TrimSuffix(b.String(), "\n"), lightText, px)
	// A light margin of 4 modules around the area.
	margin := 4 * px
	out := image.NewGray(image.Rect(0, 0, img.Rect.Dx()+2*margin, img.Rect.Dy()+2*margin))
	for i := range out.Pix {
		out.Pix[i] = 255
	}
	for y := 0; y < img.Rect.Dy(); y++ {
		copy(out.Pix[(y+margin)*out.Stride+margin:], img.Pix[y*img.Stride:y*img.Stride+img.Rect.Dx()])
	}
	return out
}
