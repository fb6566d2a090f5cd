"""FastAPI's SQL tutorial: SessionLocal, a get_db generator dependency, routes with Depends."""
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from .database import SessionLocal as ProjectSession
from . import crud, models, schemas

SQLALCHEMY_DATABASE_URL = "sqlite:///./sql_app.db"

engine = create_engine(SQLALCHEMY_DATABASE_URL, connect_args={"check_same_thread": False})
SessionLocal = sessionmaker(autocommit=False, autoflush=False, bind=engine)

app = FastAPI()


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


SessionDep = Annotated[Session, Depends(get_db)]


@app.post("/users/", response_model=schemas.User)
def create_user(user: schemas.UserCreate, db: Session = Depends(get_db)):
    db_user = crud.get_user_by_email(db, email=user.email)
    if db_user:
        raise HTTPException(status_code=400, detail="Email already registered")
    return crud.create_user(db=db, user=user)


@app.get("/users/{user_id}")
def read_user(user_id: int, db: SessionDep):
    db_user = crud.get_user(db, user_id=user_id)
    if db_user is None:
        raise HTTPException(status_code=404, detail="User not found")
    return db_user


@app.get("/health")
def health():
    db = ProjectSession()  # expect: PD203
    db.execute("SELECT 1")
    return {"ok": True}


@app.on_event("startup")
def startup():
    models.Base.metadata.create_all(bind=engine)


def get_db_without_finally():
    db = SessionLocal()  # expect: PD203
    yield db
    db.close()
