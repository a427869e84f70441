import "uplot/dist/uPlot.min.css";
import "./style.css";
import { html, render } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { apiFetch } from "./api.js";
import { ChatView } from "./chat.js";
import { EngineView } from "./engine-view.js";

/** Where the page keeps the API key between visits (this browser only). */
const keyStorage = "vellum-api-key";

type View = "chat" | "engine";
const viewFromHash = (): View => (location.hash === "#engine" ? "engine" : "chat");

/** The served model's name, or why it could not be read (a missing API key, say). */
function useModel(apiKey: string) {
  const [model, setModel] = useState({ name: "", error: "" });
  useEffect(() => {
    apiFetch("/v1/models", apiKey)
      .then((response) => response.json())
      .then((list) => setModel({ name: list.data[0]?.id ?? "", error: "" }))
      .catch((err: Error) => setModel({ name: "", error: err.message }));
  }, [apiKey]);
  return model;
}

function App() {
  const [view, setView] = useState<View>(viewFromHash());
  const [apiKey, setApiKey] = useState(localStorage.getItem(keyStorage) ?? "");
  const model = useModel(apiKey);
  useEffect(() => {
    const follow = () => setView(viewFromHash());
    addEventListener("hashchange", follow);
    return () => removeEventListener("hashchange", follow);
  }, []);
  const saveKey = (e: Event) => {
    const key = (e.target as HTMLInputElement).value.trim();
    localStorage.setItem(keyStorage, key);
    setApiKey(key);
  };
  return html`
    <header>
      <h1>vellum</h1>
      <nav>
        <a href="#chat" class=${view === "chat" ? "active" : ""} data-testid="tab-chat">Chat</a>
        <a href="#engine" class=${view === "engine" ? "active" : ""} data-testid="tab-engine">Engine</a>
      </nav>
      <span class="model" data-testid="model">${model.name}</span>
      <span class="error">${model.error}</span>
      <label class="key">API key
        <input type="password" placeholder="if the server has one" value=${apiKey} onChange=${saveKey} />
      </label>
    </header>
    <main>
      ${view === "chat" ? html`<${ChatView} apiKey=${apiKey} model=${model.name} />` : html`<${EngineView} apiKey=${apiKey} />`}
    </main>
  `;
}

render(html`<${App} />`, document.getElementById("app") as HTMLElement);
