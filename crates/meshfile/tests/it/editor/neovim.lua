-- Neovim as a user's editor with meshfile's language server (Neovim 0.7's own LSP client):
-- opens the Meshfile, waits for its diagnostics, fixes the three mistakes in the buffer,
-- waits for them to go, then asks for a hover and a definition. Everything it received is
-- written as JSON to $MESHFILE_RESULT; the test reads it back.
local dir = vim.env.MESH_DIR
local result = { diagnostics = {}, after_fix = -1 }
local function finish()
  vim.fn.writefile({ vim.fn.json_encode(result) }, vim.env.MESHFILE_RESULT)
  vim.cmd("qa!")
end

local client = vim.lsp.start_client({
  name = "meshfile",
  cmd = { vim.env.MESHFILE_BIN_PATH, "lsp" },
  root_dir = dir,
})
vim.cmd("edit " .. dir .. "/mesh.yaml")
local buf = vim.api.nvim_get_current_buf()
vim.lsp.buf_attach_client(buf, client)

local function errors()
  return vim.diagnostic.get(buf, { severity = vim.diagnostic.severity.ERROR })
end
vim.wait(30000, function() return #errors() >= 3 end, 50)
for _, d in ipairs(errors()) do
  table.insert(result.diagnostics, { code = d.code, line = d.lnum, col = d.col, message = d.message })
end

-- The fixes, typed into the buffer as a user would (the client sends the changes).
for n, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
  local fixed = line:gsub("tolerat:", "tolerate:"):gsub("Uplod", "Upload"):gsub("service: bb", "service: b")
  if fixed ~= line then
    vim.api.nvim_buf_set_lines(buf, n - 1, n, false, { fixed })
  end
end
vim.wait(30000, function() return #errors() == 0 end, 50)
result.after_fix = #errors()

local function at(needle, skip)
  for n, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    local s = line:find(needle, 1, true)
    if s then return { line = n - 1, character = s - 1 + skip } end
  end
end
local function ask(method, position)
  local params = { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = position }
  local answers = vim.lsp.buf_request_sync(buf, method, params, 30000) or {}
  for _, answer in pairs(answers) do
    return answer.result
  end
end
result.hover = ask("textDocument/hover", at("image:", 1))
result.definition = ask("textDocument/definition", at("- name: a", 8))
finish()
