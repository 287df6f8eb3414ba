// Package qrtest is test support only: it reads back a QR code drawn as
// text with half-block characters (enroll.HalfBlocks, the console), as a
// phone's camera would, with a QR decoder (makiuchi-d/gozxing).
package qrtest

import (
	"image"
	"image/color"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// DecodeHalfBlocks reads a QR code drawn by enroll.HalfBlocks (blocks light, blank
// dark), as a phone would: each module becomes 4x4 pixels of an image that
// a QR decoder reads.
func DecodeHalfBlocks(text string) (string, error) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	var rows [][]bool // true: light
	for _, l := range lines {
		var top, bottom []bool
		for _, r := range l {
			top = append(top, r == '█' || r == '▀')
			bottom = append(bottom, r == '█' || r == '▄')
		}
		rows = append(rows, top, bottom)
	}
	const px = 4
	w := 0
	for _, r := range rows {
		w = max(w, len(r))
	}
	img := image.NewGray(image.Rect(0, 0, (w+8)*px, (len(rows)+8)*px))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for y, r := range rows {
		for x, light := range r {
			c := color.Gray{Y: 0}
			if light {
				c.Y = 255
			}
			for dy := range px {
				for dx := range px {
					img.SetGray((x+4)*px+dx, (y+4)*px+dy, c)
				}
			}
		}
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}
