package balance

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Image size of WritePNG, at 96 dots per inch: 1536 × 720 pixels.
const (
	imageWidth  = 16 * vg.Inch
	imageHeight = 7.5 * vg.Inch
	imageDPI    = 96
)

// The y axes show max/mean, whose interesting range runs from 1.0001
// (p2c) to 10 (every client on one of ten nodes). Plotting the excess over
// perfect balance, max/mean − 1, in decades keeps both ends readable; the
// tick labels give max/mean itself. Excess below excessFloor is drawn at
// the floor.
const excessFloor = 1e-4

// goal is the balance target of docs/design.md section 11.
const goal = 1.05

func decades(maxOverMean float64) float64 {
	return math.Log10(math.Max(maxOverMean-1, excessFloor) / excessFloor)
}

// balanceTicks labels decades() positions with the max/mean they stand for.
func balanceTicks(_, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for _, m := range []float64{1.0001, 1.001, 1.01, 1.1, 2, 10} {
		d := decades(m)
		if d > hi+0.01 {
			break
		}
		label := fmt.Sprintf("%g", m)
		if m == 1.0001 {
			label = "≤ 1.0001"
		}
		ticks = append(ticks, plot.Tick{Value: d, Label: label})
	}
	return ticks
}

// WritePNG draws the report (see Plot) into a PNG file at path, creating
// its directory.
func (r *Report) WritePNG(path string) error {
	var buf bytes.Buffer
	if err := r.Plot(&buf); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Plot writes a two-panel PNG to w: on the left, max/mean over the course
// of the burst at Config.CourseRate, one line per strategy; on the right,
// the worst max/mean seen during the burst, one bar per strategy and rate.
// Both mark the 1.05 goal of docs/design.md section 11.
func (r *Report) Plot(w io.Writer) error {
	left, err := r.coursePlot()
	if err != nil {
		return err
	}
	right, err := r.peakPlot()
	if err != nil {
		return err
	}
	img := vgimg.NewWith(vgimg.UseWH(imageWidth, imageHeight), vgimg.UseDPI(imageDPI), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 2, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

func (r *Report) title(p *plot.Plot, text string) {
	p.Title.Text = text
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.X.Label.TextStyle.Font.Size = vg.Points(13)
	p.Y.Label.TextStyle.Font.Size = vg.Points(13)
	p.X.Tick.Label.Font.Size = vg.Points(11)
	p.Y.Tick.Label.Font.Size = vg.Points(11)
	p.Legend.TextStyle.Font.Size = vg.Points(12)
}

func (r *Report) coursePlot() (*plot.Plot, error) {
	b := r.Config.Base
	p := plot.New()
	r.title(p, fmt.Sprintf("Course of a %s burst at %s (%d nodes, %d auth instances, %s gossip lag)",
		countLabel(b.Assignments), rateLabel(r.Config.CourseRate), b.Nodes, b.Auths, lagLabel(b)))
	p.X.Label.Text = "seconds into the burst"
	p.Y.Label.Text = "busiest node / mean (log scale of the excess)"
	p.Y.Tick.Marker = plot.TickerFunc(balanceTicks)
	p.Y.Min, p.Y.Max = 0, decades(float64(b.Nodes))+0.2
	p.X.Min = 0
	p.X.Tick.Marker = plot.TickerFunc(secondTicks)
	p.Add(plotter.NewGrid())
	if err := addGoal(p, 0, float64(b.Assignments)/r.Config.CourseRate); err != nil {
		return nil, err
	}
	// The band between p2c (≈1.001) and the goal is empty: put the
	// legend there, clear of every line.
	p.Legend.Top = false
	p.Legend.XOffs = -vg.Inch / 8
	p.Legend.YOffs = legendBandOffset
	for i, s := range r.Config.Strategies {
		pts := r.Course[s]
		if len(pts) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(pts))
		for j, pt := range pts {
			xys[j] = plotter.XY{X: pt.At.Seconds(), Y: decades(pt.MaxOverMean)}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		line.Width = vg.Points(2)
		if i == 0 {
			line.Width = vg.Points(3)
		}
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(string(s), line, points)
	}
	return p, nil
}

func (r *Report) peakPlot() (*plot.Plot, error) {
	p := plot.New()
	r.title(p, fmt.Sprintf("Worst max/mean at any point of the burst, by arrival rate (%s gossip lag)", lagLabel(r.Config.Base)))
	p.Y.Label.Text = "peak busiest node / mean (log scale of the excess)"
	p.Y.Tick.Marker = plot.TickerFunc(balanceTicks)
	p.Y.Min, p.Y.Max = 0, decades(float64(r.Config.Base.Nodes))+0.2
	p.Add(plotter.NewGrid())
	// p2c's bars, on the left, stay low: the legend goes above them.
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Inch / 8

	nRates := len(r.Config.Rates)
	width := vg.Points(22)
	names := make([]string, len(r.Config.Strategies))
	for i, s := range r.Config.Strategies {
		names[i] = string(s)
	}
	for k, rate := range r.Config.Rates {
		vals := make(plotter.Values, len(r.Config.Strategies))
		for i, s := range r.Config.Strategies {
			row, ok := r.Find(s, rate)
			if !ok {
				return nil, fmt.Errorf("balanceplot: no result for %s at %g/s", s, rate)
			}
			vals[i] = decades(row.Result.PeakMaxOverMean)
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, err
		}
		bars.LineStyle.Width = 0
		bars.Color = rateColor(k, nRates)
		bars.Offset = width * vg.Length(float64(k)-float64(nRates-1)/2)
		p.Add(bars)
		p.Legend.Add(rateLabel(rate)+" ("+burstLabel(r.Config.Base.Assignments, rate)+")", bars)
	}
	p.NominalX(names...)
	if err := addGoal(p, -0.5, float64(len(names))-0.5); err != nil {
		return nil, err
	}
	return p, nil
}

// legendBandOffset lifts the course panel's legend from the bottom of
// the plot area into the band between max/mean 1.004 and 1.05.
const legendBandOffset = 2.25 * vg.Inch

// secondTicks marks whole seconds (or tenths, for bursts under 2 s).
func secondTicks(lo, hi float64) []plot.Tick {
	step := 1.0
	if hi-lo < 2 {
		step = 0.1
	}
	for (hi-lo)/step > 12 {
		step *= 2
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step/1000; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ticks
}

// addGoal draws the max/mean goal of docs/design.md section 11 as a dashed
// line from x0 to x1.
func addGoal(p *plot.Plot, x0, x1 float64) error {
	g, err := plotter.NewLine(plotter.XYs{{X: x0, Y: decades(goal)}, {X: x1, Y: decades(goal)}})
	if err != nil {
		return err
	}
	g.Color = color.Gray{Y: 60}
	g.Width = vg.Points(1.5)
	g.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	p.Add(g)
	p.Legend.Add(fmt.Sprintf("goal: max/mean ≤ %g", goal), g)
	return nil
}

// rateColor shades the rate bars from light (slow) to dark (fast) blue.
func rateColor(k, n int) color.Color {
	t := 0.0
	if n > 1 {
		t = float64(k) / float64(n-1)
	}
	return color.RGBA{R: uint8(150 - 130*t), G: uint8(190 - 140*t), B: uint8(240 - 90*t), A: 255}
}

func burstLabel(assignments int, rate float64) string {
	return fmt.Sprintf("burst over %.3g s", float64(assignments)/rate)
}

func countLabel(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func lagLabel(b SimConfig) string { return b.Lag.String() }
