import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { Wall } from '../../features/wall/Wall';
import './display.css';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Wall />
  </StrictMode>,
);
