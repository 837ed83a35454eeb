import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { Uploader } from '../../features/uploader/Uploader';
import './uploader.css';

document.documentElement.lang = navigator.language.toLowerCase().startsWith('ja') ? 'ja' : 'en';
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Uploader />
  </StrictMode>,
);
