package idleconn

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePNG draws the sweep (see Plot) into a PNG file at path, creating its
// directory.
func (r *Result) WritePNG(path string) error {
	var buf bytes.Buffer
	if err := r.Plot(&buf); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Plot writes a PNG to w: RSS growth per connection (KiB) against the
// number of connections held, one colour per server; solid after a
// scavenge, dashed as it stood (raw).
func (r *Result) Plot(w io.Writer) error {
	if len(r.Servers) == 0 {
		return errors.New("idleconn: no server to plot")
	}
	p := plot.New()
	p.Title.Text = "Idle WebSocket connections: server RSS growth per connection"
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.X.Label.Text = "connections held"
	p.Y.Label.Text = "KiB per connection (solid: after a scavenge; dashed: raw)"
	p.X.Label.TextStyle.Font.Size = vg.Points(13)
	p.Y.Label.TextStyle.Font.Size = vg.Points(13)
	p.X.Tick.Label.Font.Size = vg.Points(11)
	p.Y.Tick.Label.Font.Size = vg.Points(11)
	p.Legend.TextStyle.Font.Size = vg.Points(12)
	p.X.Min, p.Y.Min = 0, 0
	p.Add(plotter.NewGrid())
	p.Y.Tick.Marker = plot.DefaultTicks{}
	for i := range r.Servers {
		s := &r.Servers[i]
		var raw, scav plotter.XYs
		for _, m := range s.Marks {
			raw = append(raw, plotter.XY{X: float64(m.Conns), Y: s.RawPerConn(m) / 1024})
			if m.RSSScavenged != 0 {
				scav = append(scav, plotter.XY{X: float64(m.Conns), Y: s.ScavengedPerConn(m) / 1024})
			}
		}
		c := plotutil.Color(i)
		if len(scav) > 0 {
			l, pts, err := plotter.NewLinePoints(scav)
			if err != nil {
				return err
			}
			l.Color, l.Width = c, vg.Points(2.5)
			pts.Color, pts.Shape = c, draw.CircleGlyph{}
			p.Add(l, pts)
			p.Legend.Add(fmt.Sprintf("%s (%.1f KiB at %d)", s.Server, s.ScavengedPerConn(s.Last())/1024, s.Last().Conns), l, pts)
		}
		l, err := plotter.NewLine(raw)
		if err != nil {
			return err
		}
		l.Color, l.Width = c, vg.Points(1.5)
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
		p.Add(l)
		if len(scav) == 0 {
			p.Legend.Add(s.Server+" (raw)", l)
		}
	}
	// Room above the highest line for the legend.
	p.Y.Max *= 1.3
	p.Legend.Top = true
	img := vgimg.NewWith(vgimg.UseWH(12*vg.Inch, 7*vg.Inch), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))
	p.Draw(draw.New(img))
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}
