//! A layered left-to-right layout (after Sugiyama): cycles broken by reversing back edges,
//! layers by longest path, order within a layer by barycenters, sizes from the labels.
//! Deterministic: ties keep the graph's own order.

use crate::Graph;

/// Where each node goes, in the graph's node order; all in pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub boxes: Vec<Place>,
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Place {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Place {
    pub fn right(&self) -> (u32, u32) {
        (self.x + self.width, self.y + self.height / 2)
    }

    pub fn left(&self) -> (u32, u32) {
        (self.x, self.y + self.height / 2)
    }
}

pub const NODE_HEIGHT: u32 = 28;
const ROW: u32 = 40;
const LAYER_GAP: u32 = 90;
const MARGIN: u32 = 20;
/// Characters a label shows at most; longer ones are cut with an ellipsis.
pub const LABEL_CHARS: usize = 40;
const SWEEPS: usize = 6;

/// The width a label takes in the pictures' font (7 px a character, padding beside).
pub fn label_width(label: &str) -> u32 {
    let chars = label.chars().count().min(LABEL_CHARS) as u32;
    chars * 7 + 20
}

/// How many nodes a column holds at most: about as many as make the whole picture some 1.6
/// times as wide as high when the large layers are split (columns of some 290 pixels with
/// their gap, rows of 40), and never fewer than 20.
fn column_height(nodes: usize) -> usize {
    let wanted = ((nodes as f64) * 290.0 / (ROW as f64 * 1.6)).sqrt().ceil() as usize;
    wanted.max(20)
}

pub fn layout(graph: &Graph) -> Layout {
    let n = graph.nodes.len();
    let index = graph.positions();
    let edges: Vec<(usize, usize)> = (graph.edges.iter())
        .filter_map(|e| Some((*index.get(e.from.as_str())?, *index.get(e.to.as_str())?)))
        .filter(|(a, b)| a != b)
        .collect();
    let forward = acyclic(n, &edges);
    let layer = layers(n, &forward);
    let layer_count = layer.iter().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for (v, &l) in layer.iter().enumerate() {
        rows[l].push(v);
    }
    order(&mut rows, &layer, &forward, n);
    // A layer taller than the picture is to be is laid out as several columns side by side.
    let rows: Vec<Vec<usize>> = rows
        .into_iter()
        .flat_map(|row| {
            let chunks: Vec<Vec<usize>> = row
                .chunks(column_height(n))
                .map(<[usize]>::to_vec)
                .collect();
            chunks
        })
        .collect();
    // Sizes and places.
    let widths: Vec<u32> = graph
        .nodes
        .iter()
        .map(|node| label_width(&node.label))
        .collect();
    let column_width: Vec<u32> = (rows.iter())
        .map(|row| row.iter().map(|&v| widths[v]).max().unwrap_or(0))
        .collect();
    let tallest = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let height = tallest * ROW + 2 * MARGIN;
    let mut boxes = vec![
        Place {
            x: 0,
            y: 0,
            width: 0,
            height: NODE_HEIGHT
        };
        n
    ];
    let mut x = MARGIN;
    for (l, row) in rows.iter().enumerate() {
        let offset = (tallest - row.len() as u32) * ROW / 2;
        for (position, &v) in row.iter().enumerate() {
            boxes[v] = Place {
                x: x + (column_width[l] - widths[v]) / 2,
                y: MARGIN + offset + position as u32 * ROW,
                width: widths[v],
                height: NODE_HEIGHT,
            };
        }
        x += column_width[l] + LAYER_GAP;
    }
    let width = x.saturating_sub(LAYER_GAP) + MARGIN;
    Layout {
        boxes,
        width,
        height,
    }
}

/// The edges with every back edge of a depth-first search reversed: a graph without cycles.
fn acyclic(n: usize, edges: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, &(a, _)) in edges.iter().enumerate() {
        out_edges[a].push(i);
    }
    // 0 unvisited, 1 on the stack, 2 done.
    let mut state = vec![0u8; n];
    let mut reversed = vec![false; edges.len()];
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some(&(v, next)) = stack.last() {
            if let Some(&e) = out_edges[v].get(next) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                let w = edges[e].1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => reversed[e] = true,
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    (edges.iter().zip(reversed))
        .map(|(&(a, b), r)| if r { (b, a) } else { (a, b) })
        .collect()
}

/// Each node's layer: the longest path to it from a node without predecessors.
fn layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut incoming = vec![0usize; n];
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        incoming[b] += 1;
        out_edges[a].push(b);
    }
    let mut layer = vec![0usize; n];
    let mut ready: std::collections::VecDeque<usize> =
        (0..n).filter(|&v| incoming[v] == 0).collect();
    while let Some(v) = ready.pop_front() {
        for &w in &out_edges[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            incoming[w] -= 1;
            if incoming[w] == 0 {
                ready.push_back(w);
            }
        }
    }
    layer
}

/// Orders each layer by the mean position of its neighbours in the layer before (sweeping
/// down) or after (sweeping up); a stable sort keeps ties in the graph's order.
fn order(rows: &mut [Vec<usize>], layer: &[usize], edges: &[(usize, usize)], n: usize) {
    let mut neighbours_before: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut neighbours_after: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        if layer[a] + 1 == layer[b] {
            neighbours_before[b].push(a);
            neighbours_after[a].push(b);
        }
    }
    let mut position = vec![0usize; n];
    let place = |rows: &[Vec<usize>], position: &mut Vec<usize>| {
        for row in rows {
            for (p, &v) in row.iter().enumerate() {
                position[v] = p;
            }
        }
    };
    place(rows, &mut position);
    let sort = |row: &mut Vec<usize>, neighbours: &[Vec<usize>], position: &[usize]| {
        let keys: Vec<(usize, f64)> = row
            .iter()
            .map(|&v| {
                let near = &neighbours[v];
                let key = if near.is_empty() {
                    position[v] as f64
                } else {
                    near.iter().map(|&u| position[u] as f64).sum::<f64>() / near.len() as f64
                };
                (v, key)
            })
            .collect();
        let mut keyed = keys;
        keyed.sort_by(|a, b| a.1.total_cmp(&b.1));
        *row = keyed.into_iter().map(|(v, _)| v).collect();
    };
    for sweep in 0..SWEEPS {
        if sweep % 2 == 0 {
            for l in 1..rows.len() {
                sort(&mut rows[l], &neighbours_before, &position);
                place(&rows[l..=l], &mut position);
            }
        } else {
            for l in (0..rows.len().saturating_sub(1)).rev() {
                sort(&mut rows[l], &neighbours_after, &position);
                place(&rows[l..=l], &mut position);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_broken_and_layers_follow_edges() {
        let edges = [(0, 1), (1, 2), (2, 0), (2, 3)];
        let forward = acyclic(4, &edges);
        let layer = layers(4, &forward);
        for (a, b) in forward {
            assert!(layer[a] < layer[b], "{a}->{b} in {layer:?}");
        }
    }
}
