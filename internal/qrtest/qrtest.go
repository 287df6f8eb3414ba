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
func Image(screen string, lightText bool) *image.Gray {
	lines := strings.Split(ansi.Strip(screen), "\n")
	w := 0
	for _, l := range lines {
		w = max(w, ansi.StringWidth(l))
	}
	const px = 4
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

// Decode reads the QR code on a screen (see Image).
func Decode(screen string, lightText bool) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(Image(screen, lightText))
	if err != nil {
		return "", err
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}
