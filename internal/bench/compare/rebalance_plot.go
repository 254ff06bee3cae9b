package compare

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Image size of the rebalance plot, at 96 dots per inch: 1536 × 672 pixels.
const (
	rbImageWidth  = 16 * vg.Inch
	rbImageHeight = 7 * vg.Inch
	rbImageDPI    = 96
)

// WritePNG draws the result (see Plot) into a PNG file at path, creating
// its directory.
func (r *RebalanceResult) WritePNG(path string) error {
	var buf bytes.Buffer
	if err := r.Plot(&buf); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Plot writes a two-panel PNG to w: on the left, clients per node over time
// from the new node's start, with the goal band around the mean and the
// moment the goal was reached; on the right, reconnects and auth requests
// of moved clients per second, against the configured bound.
func (r *RebalanceResult) Plot(w io.Writer) error {
	if len(r.Series) < 2 {
		return errors.New("benchcompare: the result has no time series to plot")
	}
	left, err := r.countsPlot()
	if err != nil {
		return err
	}
	right, err := r.ratesPlot()
	if err != nil {
		return err
	}
	img := vgimg.NewWith(vgimg.UseWH(rbImageWidth, rbImageHeight), vgimg.UseDPI(rbImageDPI), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 2, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

func styleTitle(p *plot.Plot, text string) {
	p.Title.Text = text
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.X.Label.TextStyle.Font.Size = vg.Points(13)
	p.Y.Label.TextStyle.Font.Size = vg.Points(13)
	p.X.Tick.Label.Font.Size = vg.Points(11)
	p.Y.Tick.Label.Font.Size = vg.Points(11)
	p.Legend.TextStyle.Font.Size = vg.Points(12)
}

// nodeNames lists every node seen in the series, in name order.
func (r *RebalanceResult) nodeNames() []string {
	seen := map[string]bool{}
	for k := range r.Before {
		seen[k] = true
	}
	for _, s := range r.Series {
		for k := range s.Nodes {
			seen[k] = true
		}
	}
	names := make([]string, 0, len(seen))
	for k := range seen {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (r *RebalanceResult) countsPlot() (*plot.Plot, error) {
	names := r.nodeNames()
	p := plot.New()
	styleTitle(p, fmt.Sprintf("Clients per node: %d → %d nodes, %d clients, rebalance at most %g/s",
		len(names)-1, len(names), r.Clients, r.MaxRate))
	p.X.Label.Text = "seconds since the scale-out started (" + r.startLabel() + ")"
	p.Y.Label.Text = "clients connected"
	p.X.Min = 0
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	last := r.Series[len(r.Series)-1].T
	mean := float64(r.Clients) / float64(len(names))
	// The goal: every node within Goal × the mean.
	band, err := plotter.NewLine(plotter.XYs{{X: 0, Y: mean * r.Goal}, {X: last, Y: mean * r.Goal}})
	if err != nil {
		return nil, err
	}
	band.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	band.Color = color.Gray{Y: 100}
	band.Width = vg.Points(1.5)
	p.Add(band)
	p.Legend.Add(fmt.Sprintf("goal: %.2f × the mean (%.0f)", r.Goal, mean*r.Goal), band)
	for i, name := range names {
		xys := make(plotter.XYs, len(r.Series))
		for j, s := range r.Series {
			xys[j] = plotter.XY{X: s.T, Y: float64(s.Nodes[name])}
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(2.5)
		p.Add(line)
		p.Legend.Add(name, line)
	}
	if r.BalancedSeconds >= 0 {
		mark, err := plotter.NewLine(plotter.XYs{{X: r.BalancedSeconds, Y: 0}, {X: r.BalancedSeconds, Y: mean * (r.Goal + 0.35)}})
		if err != nil {
			return nil, err
		}
		mark.Color = color.RGBA{R: 200, A: 255}
		mark.Width = vg.Points(1.5)
		mark.Dashes = []vg.Length{vg.Points(2), vg.Points(3)}
		p.Add(mark)
		p.Legend.Add(fmt.Sprintf("max/mean ≤ %.2f after %.1f s", r.Goal, r.BalancedSeconds), mark)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.YOffs = vg.Inch
	return p, nil
}

// perSecond turns a counter into its increase over the second before each
// sample (from the earliest sample at most a second older), the figure
// RebalanceResult's peaks report.
func (r *RebalanceResult) perSecond(v func(RebalanceSample) float64) plotter.XYs {
	var out plotter.XYs
	i := 0
	for j, s := range r.Series {
		for i < j && s.T-r.Series[i].T > 1.0+1e-9 {
			i++
		}
		if i == j || v(s) < 0 || v(r.Series[i]) < 0 {
			continue
		}
		out = append(out, plotter.XY{X: s.T, Y: v(s) - v(r.Series[i])})
	}
	return out
}

// startLabel says what the time axis counts from.
func (r *RebalanceResult) startLabel() string {
	if r.Path == PathTerraform {
		return "terraform apply began"
	}
	return "the node process started"
}

func (r *RebalanceResult) ratesPlot() (*plot.Plot, error) {
	p := plot.New()
	styleTitle(p, fmt.Sprintf("Reconnects per second (moved %d = %.2f× the least, %d lost)", r.Moved, r.MovedRatio, r.Lost))
	p.X.Label.Text = "seconds since the scale-out started (" + r.startLabel() + ")"
	p.Y.Label.Text = "in the past second"
	p.X.Min, p.Y.Min = 0, 0
	p.Add(plotter.NewGrid())
	last := r.Series[len(r.Series)-1].T
	bound, err := plotter.NewLine(plotter.XYs{{X: 0, Y: r.MaxRate}, {X: last, Y: r.MaxRate}})
	if err != nil {
		return nil, err
	}
	bound.Color = color.RGBA{R: 200, A: 255}
	bound.Width = vg.Points(1.5)
	bound.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	p.Add(bound)
	p.Legend.Add(fmt.Sprintf("bound: %g moves/s (-rebalance-max-rate)", r.MaxRate), bound)
	for i, c := range []struct {
		name string
		v    func(RebalanceSample) float64
	}{
		{"clients' reconnects", func(s RebalanceSample) float64 { return float64(s.Connects) }},
		{"closes with 4003 seen by clients", func(s RebalanceSample) float64 { return float64(s.Moved) }},
		{"auth requests of moved clients", func(s RebalanceSample) float64 { return s.AuthRebalance }},
	} {
		xys := r.perSecond(c.v)
		if len(xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(2)
		if i == 0 {
			line.Width = vg.Points(3)
		}
		p.Add(line)
		p.Legend.Add(c.name, line)
	}
	p.Y.Max = max(p.Y.Max, r.MaxRate*1.4)
	return p, nil
}
