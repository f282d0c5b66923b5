"""Divisions (eup/myeon) and villages."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base


class Division(Base):
    """An eup (town) or myeon (township) of the county."""

    __tablename__ = "geo_divisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name_ko: Mapped[str] = mapped_column(String(40), unique=True)
    name_en: Mapped[str] = mapped_column(String(80))
    # "eup" or "myeon": derived from the Korean name at seed time, kept for sorting and display.
    kind: Mapped[str] = mapped_column(String(8))

    villages: Mapped[list[Village]] = relationship(back_populates="division", order_by="Village.name_ko")


class Village(Base):
    """A village (ri) with a hall where a kiosk stands."""

    __tablename__ = "geo_villages"
    __table_args__ = (UniqueConstraint("division_id", "name_ko"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    division_id: Mapped[int] = mapped_column(ForeignKey("geo_divisions.id", ondelete="RESTRICT"), index=True)
    name_ko: Mapped[str] = mapped_column(String(40))

    division: Mapped[Division] = relationship(back_populates="villages", lazy="joined")

    @property
    def full_name_ko(self) -> str:
        return f"{self.division.name_ko} {self.name_ko}"
